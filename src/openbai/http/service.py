"""The installation a server runs, as a FastAPI dependency of every route (API and web page).

Each request also makes sure a dispatcher runs (at most once a second, see
``App.keep_dispatcher``): an API over an installation whose dispatcher died revives it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from openbai.installation import App


async def service(request: Request) -> App:
    """The installation the server runs (settings, database, executors).

    A coroutine, so that FastAPI does not hand every request to a worker thread just for
    this: in ``bai serve`` the dispatcher runs in the serving process and there is nothing
    to check; an app over an installation without one checks (in a thread: it may query)."""
    app: App = request.app.state.openbai
    if app.on_change is None:
        await run_in_threadpool(app.keep_dispatcher)
    return app


Service = Annotated[App, Depends(service)]

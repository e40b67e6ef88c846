"""The installation a server runs, as a FastAPI dependency of every route (API and web page).

Each request also makes sure a dispatcher runs (at most once a second, see
``App.keep_dispatcher``): an API over an installation whose dispatcher died revives it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from openbai.installation import App


def service(request: Request) -> App:
    """The installation the server runs (settings, database, executors)."""
    app: App = request.app.state.openbai
    app.keep_dispatcher()  # a dispatcher runs while jobs are queued or running
    return app


Service = Annotated[App, Depends(service)]

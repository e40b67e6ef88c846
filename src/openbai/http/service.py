"""The installation a server runs, as a FastAPI dependency of every route (API and web page)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from openbai.installation import App


def service(request: Request) -> App:
    """The installation the server runs (settings, database, executors)."""
    app: App = request.app.state.openbai
    return app


Service = Annotated[App, Depends(service)]

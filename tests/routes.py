"""Every route a FastAPI app declares, through its included routers: what the permission and
session tests walk so that no route is left out."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Mount


def declared_routes(app: Any) -> list[tuple[str, str]]:
    """(method, declared path) of every route of ``app``, sorted."""
    assert isinstance(app, FastAPI)
    found = []
    routes = list(app.routes)
    while routes:
        route = routes.pop(0)
        included = getattr(route, "original_router", None)  # FastAPI's include_router
        if included is not None:
            routes.extend(included.routes)
        elif isinstance(route, APIRoute):
            found += [(method, route.path) for method in route.methods or ()]
    return sorted(found)


def mounted_app(app: Any, prefix: str) -> FastAPI:
    """The app mounted at ``prefix`` (the web page at ``/ui``)."""
    assert isinstance(app, FastAPI)
    (mount,) = [r for r in app.routes if isinstance(r, Mount) and r.path == prefix]
    assert isinstance(mount.app, FastAPI)
    return mount.app

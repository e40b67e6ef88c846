"""The explorer as an application of its own, mounted at ``/ui`` by the REST server.

It has its own error pages (HTML, with the API's status table), sends a visitor without a
session to the login page, and sets security headers on every answer: a Content Security
Policy allowing only this server's own scripts, styles and connections (so even a markup
bug could not run a script), no framing, no MIME sniffing, and ``Cache-Control: no-store`` on
everything but the static assets (a page is never kept: Back after logging out shows none).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openbai.errors import OpenBaiError
from openbai.http.errors import status_of, validation_error
from openbai.installation import App
from openbai.services.deletions import BackgroundDeletes
from openbai.web import clusters, files, jobs, live, login, shared_stream, storage, workspaces
from openbai.web.links import Links
from openbai.web.session import BrowserSession, LoginRequired, browser_session
from openbai.web.templating import is_fragment, render

log = logging.getLogger("openbai.web")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]
NO_STORE = (b"cache-control", b"no-store")


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response (pure ASGI: streams pass through)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        static = scope["path"].startswith(scope.get("root_path", "") + "/static/")
        extra = SECURITY_HEADERS if static else [*SECURITY_HEADERS, NO_STORE]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if static or k != NO_STORE[0]
                ]
                message["headers"] = [*headers, *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_web_app(
    service: App, deletes: BackgroundDeletes, *, public_url: str | None = None
) -> FastAPI:
    """The explorer over ``service`` (the server's installation); deletes end on the
    server's background threads, as the API's do. ``public_url`` (checked) is where
    browsers reach the server behind a proxy."""
    web = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    web.state.public_url = public_url
    web.state.openbai = service
    web.state.deletes = deletes
    web.add_middleware(SecurityHeaders)
    web.mount("/static", StaticFiles(packages=[("openbai.web", "static")]), name="static")
    for module in (login, workspaces, clusters, storage, jobs, files, live, shared_stream):
        web.include_router(module.router)
    web.add_exception_handler(LoginRequired, _on_login_required)
    web.add_exception_handler(OpenBaiError, _on_openbai_error)
    web.add_exception_handler(RequestValidationError, _on_validation_error)
    web.add_exception_handler(HTTPException, _on_http_error)
    web.add_exception_handler(Exception, _on_unexpected)
    return web


async def _on_login_required(request: Request, exc: Exception) -> Response:
    links = Links.of(request)
    login_url = links.to("login", next=links.here(request) if request.method == "GET" else None)
    if "text/event-stream" in request.headers.get("accept", ""):
        return PlainTextResponse("log in first", 401)
    if is_fragment(request):
        return Response(status_code=204, headers={"HX-Redirect": login_url})
    return RedirectResponse(login_url, status_code=303)


def error_page(request: Request, status: int, message: str) -> Response:
    if is_fragment(request):
        return render(request, "_error.html", status=status, code=status, message=message)
    return render(
        request,
        "error.html",
        status=status,
        code=status,
        message=message,
        session=_session_or_none(request),
    )


def _session_or_none(request: Request) -> BrowserSession | None:
    """The visitor's session, so an error page keeps the navigation and Log out; None for
    a visitor without one (or one the page refused)."""
    try:
        return browser_session(request, request.app.state.openbai)
    except (LoginRequired, OpenBaiError):
        return None


async def _on_openbai_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OpenBaiError)
    status = status_of(exc)
    if status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc.message)
    return error_page(request, status, exc.message)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_page(request, 400, validation_error(exc).message)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = "There is no such page." if exc.status_code == 404 else str(exc.detail)
    return error_page(request, exc.status_code, message)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_page(request, 500, "The server failed; see its log.")

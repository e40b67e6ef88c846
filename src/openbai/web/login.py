"""The login page (a token of ``bai token create``) and logging out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from openbai.errors import AuthError
from openbai.http.audit_trail import note
from openbai.http.service import Service
from openbai.services import sessions
from openbai.web.links import Links
from openbai.web.session import (
    COOKIE,
    CheckedForm,
    check_origin,
    form_fields,
    is_secure,
    safe_next,
)
from openbai.web.templating import render

router = APIRouter()


@router.get("/login")
def login_page(request: Request, next: Annotated[str, Query(max_length=2048)] = "") -> Response:
    return render(request, "login.html", next=next, error=None)


@router.post("/login")
async def login_submit(request: Request, app: Service) -> Response:
    check_origin(request)
    fields = await form_fields(request)
    token = fields.get("token", "").strip()
    try:
        login = await run_in_threadpool(sessions.open_session, app, token)
    except AuthError:
        error = "That token is not valid." if token else "Enter a token."
        return render(request, "login.html", status=401, next=fields.get("next", ""), error=error)
    note(request, login.token.name, "session.login", request.url.path)
    root = Links.of(request).root
    response = RedirectResponse(safe_next(fields.get("next"), root), status_code=303)
    response.set_cookie(
        COOKIE,
        login.session_id,
        expires=login.expires,
        path=root or "/",
        secure=is_secure(request),
        httponly=True,
        samesite="lax",
    )
    return response


@router.post("/logout")
async def logout(request: Request, app: Service, form: CheckedForm) -> Response:
    """End the session on the server (a copy of the cookie is worth nothing from now on)."""
    await run_in_threadpool(sessions.end_session, app, request.cookies.get(COOKIE) or "")
    links = Links.of(request)
    response = RedirectResponse(links.to("login"), status_code=303)
    response.delete_cookie(
        COOKIE, path=links.root or "/", secure=is_secure(request), httponly=True, samesite="lax"
    )
    return response

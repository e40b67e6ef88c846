"""The login page (a token of ``bai token create``) and logging out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from openbai.errors import AuthError
from openbai.http.service import Service
from openbai.web.links import Links
from openbai.web.session import (
    COOKIE,
    MAX_AGE,
    CheckedForm,
    check_origin,
    form_fields,
    is_secure,
    login,
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
    token = fields.get("token", "")
    try:
        await run_in_threadpool(login, app, token)
    except AuthError:
        error = "That token is not valid." if token.strip() else "Enter a token."
        return render(request, "login.html", status=401, next=fields.get("next", ""), error=error)
    root = Links.of(request).root
    response = RedirectResponse(safe_next(fields.get("next"), root), status_code=303)
    response.set_cookie(
        COOKIE,
        token.strip(),
        max_age=MAX_AGE,
        path=root or "/",
        secure=is_secure(request),
        httponly=True,
        samesite="lax",
    )
    return response


@router.post("/logout")
def logout(request: Request, form: CheckedForm) -> Response:
    links = Links.of(request)
    response = RedirectResponse(links.to("login"), status_code=303)
    response.delete_cookie(
        COOKIE, path=links.root or "/", secure=is_secure(request), httponly=True, samesite="lax"
    )
    return response

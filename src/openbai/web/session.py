"""Browser sessions: logging in with a ``bai token create`` token makes a session on the
server, whose random id the cookie holds, and the CSRF check.

The cookie ``openbai_session`` holds only the session's id (the token never reaches the
browser's cookie jar): HttpOnly (page scripts cannot read it), ``SameSite=Lax`` (other sites'
pages cannot send it with a POST, a fetch or a frame; following a link to a page still
works) and ``Secure`` when served over https. Every request looks the session up
(``openbai.services.sessions``), so logging out or deleting the token ends it at once, and
applies the token's role and workspaces to the page (``openbai.http.permissions``).

State-changing requests are POSTs of a form that carries the session's CSRF token (an HMAC
of the session's id, so it needs no server state and no other site can compute it); their
``Origin``, when the browser sends one, must be this server's: the public URL's behind a
proxy (``bai serve --public-url``), which may well end TLS and rewrite ``Host``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qsl, urlsplit

from fastapi import Depends, Request

from openbai.errors import AuthError, PermissionDeniedError, SpecError
from openbai.http.caller import admit
from openbai.http.permissions import WEB_RULES
from openbai.http.service import Service
from openbai.services import sessions
from openbai.web.links import public_origin

COOKIE = "openbai_session"
#: seconds a login lasts at most (less when its token expires sooner)
MAX_AGE = int(sessions.LIFETIME.total_seconds())
#: largest form body read (a login form, or a CSRF token)
MAX_FORM_BYTES = 16 * 1024


class LoginRequired(Exception):
    """The request has no valid session cookie: the browser is sent to the login page."""


class CsrfError(PermissionDeniedError):
    code = "CsrfCheckFailed"


@dataclass(frozen=True)
class BrowserSession:
    """Who is logged in (the token's name), their role, and the CSRF token their forms carry."""

    token_name: str
    role: str
    csrf: str


def csrf_token(session_id: str) -> str:
    digest = hmac.digest(session_id.encode(), b"openbai-web-csrf", hashlib.sha256)
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def browser_session(request: Request, app: Service) -> BrowserSession:
    """The request's session, admitted to the page (``AuthorizationError``: a 403 page);
    ``LoginRequired`` without a live one."""
    session_id = request.cookies.get(COOKIE) or ""
    try:
        token = sessions.resume_session(app, session_id)
    except AuthError:
        raise LoginRequired from None
    admit(request, app, token, WEB_RULES)
    return BrowserSession(token.name, token.role.value, csrf_token(session_id))


Browser = Annotated[BrowserSession, Depends(browser_session)]


def is_secure(request: Request) -> bool:
    """Whether the browser reached the explorer over https (TLS may end at a proxy)."""
    return public_origin(request)[1]


def check_origin(request: Request) -> None:
    """Refuse a request that a page of another origin sent (clients that send neither
    header, such as curl, are left to the CSRF token)."""
    origin = request.headers.get("origin")
    site = request.headers.get("sec-fetch-site")
    own = public_origin(request)[0]
    if (site is not None and site not in ("same-origin", "none")) or (
        origin is not None and origin != own
    ):
        raise CsrfError(f"the request came from another site ({origin or site})")


async def form_fields(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (the only kind the pages send)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise SpecError("the form is too large", target="body")
    try:
        return dict(parse_qsl(body.decode(), keep_blank_values=True))
    except UnicodeDecodeError:
        raise SpecError("the form is not valid UTF-8", target="body") from None


async def checked_form(request: Request, session: Browser) -> dict[str, str]:
    """The fields of a state-changing form, after the origin and CSRF checks."""
    check_origin(request)
    fields = await form_fields(request)
    if not hmac.compare_digest(fields.get("csrf", "").encode(), session.csrf.encode()):
        raise CsrfError("the form's CSRF token is missing or wrong; reload the page")
    return fields


CheckedForm = Annotated[dict[str, str], Depends(checked_form)]


def safe_next(target: str | None, root: str) -> str:
    """Where to go after logging in: a page of this explorer, never another site."""
    default = root + "/"
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target or target.startswith("//"):
        return default
    if not (parts.path == root or parts.path.startswith(root + "/")):
        return default
    return target

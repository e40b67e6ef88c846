"""Bearer-token authentication and authorization: every route but ``/healthz`` and signed
download links needs ``Authorization: Bearer <token>`` with a token made by ``bai token
create``, whose role and workspaces allow the route (``openbai.http.permissions``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from openbai.http.caller import admit
from openbai.http.permissions import API_RULES
from openbai.http.service import Service
from openbai.services import tokens

_bearer = HTTPBearer(auto_error=False, description="A token made by `bai token create`.")


async def require_token(
    request: Request,
    app: Service,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> tokens.TokenInfo:
    """The caller's token, admitted to the route: 401 (``AuthError``) or 403
    (``AuthorizationError``) before anything else is looked at.

    On the event loop, not a worker thread: the token's read is one prepared query by primary
    key (~0.1 ms), less than a thread hand-off, and every request makes it."""
    token = tokens.verify_token(app, credentials.credentials if credentials else None)
    return admit(request, app, token, API_RULES)


AUTHENTICATED = [Depends(require_token)]

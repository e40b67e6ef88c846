"""Bearer-token authentication and authorization: every route but ``/healthz`` and signed
download links needs ``Authorization: Bearer <token>`` with a token made by ``bai token
create``, whose role and workspaces allow the route (``openbai.http.permissions``)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from openbai.errors import AuthError
from openbai.http.caller import admit
from openbai.http.permissions import API_RULES
from openbai.http.service import Service
from openbai.installation import App
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


#: seconds between two looks at the token of an open stream (deleting it ends the stream)
TOKEN_CHECK = 2.0


class TokenWatch:
    """A request's token, looked at again while its response streams, so that a stream does
    not outlive its token: :meth:`check` raises the token's ``AuthError`` once it has been
    deleted or has expired (a blocking look at most every :data:`TOKEN_CHECK` seconds, made
    on the stream's thread; a refusal is final)."""

    def __init__(self, app: App, secret: str) -> None:
        self._app, self._secret = app, secret
        self._looked = time.monotonic()
        self._refused: AuthError | None = None

    def check(self) -> None:
        if self._refused is None and time.monotonic() - self._looked >= TOKEN_CHECK:
            self._looked = time.monotonic()
            try:
                tokens.verify_token(self._app, self._secret)
            except AuthError as exc:
                self._refused = exc
        if self._refused is not None:
            raise self._refused

    def refused(self) -> bool:
        try:
            self.check()
        except AuthError:
            return True
        return False


async def token_watch(
    app: Service,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> TokenWatch:
    return TokenWatch(app, credentials.credentials if credentials else "")


WatchedToken = Annotated[TokenWatch, Depends(token_watch)]

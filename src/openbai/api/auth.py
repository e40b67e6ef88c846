"""Bearer-token authentication: every route but ``/healthz`` and signed download links
needs ``Authorization: Bearer <token>`` with a token made by ``bai token create``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from openbai.http.service import Service
from openbai.services import tokens

_bearer = HTTPBearer(auto_error=False, description="A token made by `bai token create`.")


def require_token(
    app: Service,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> tokens.TokenInfo:
    """The caller's token; 401 (``AuthError``) before anything else is looked at."""
    return tokens.verify_token(app, credentials.credentials if credentials else None)


AUTHENTICATED = [Depends(require_token)]

"""API tokens of ``bai serve``: created once, stored as hashes, checked on every request.

A token is 32 random bytes (``bai_`` + URL-safe base64). Only its SHA-256 is stored: a
random token of that length needs no slow hash, and a copy of the database reveals no
token. The token itself is shown once, when it is created.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from openbai.errors import AuthError, ConflictError, NotFoundError
from openbai.installation import App
from openbai.spec import check_name
from openbai.store.models import ApiToken

PREFIX = "bai_"


@dataclass(frozen=True)
class TokenInfo:
    name: str
    created: datetime


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(app: App, name: str) -> tuple[TokenInfo, str]:
    """A new token named ``name``: its record and the token (never retrievable again)."""
    check_name(name, field="name")
    token = PREFIX + secrets.token_urlsafe(32)
    with app.db.session() as s:
        if s.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
            raise ConflictError(
                f"a token named {name!r} already exists", code="TokenAlreadyExists", target="name"
            )
        row = ApiToken(name=name, token_hash=_hash(token))
        s.add(row)
        s.flush()
        return TokenInfo(row.name, row.created_at), token


def list_tokens(app: App) -> list[TokenInfo]:
    with app.db.reading() as s:
        return [
            TokenInfo(r.name, r.created_at)
            for r in s.scalars(select(ApiToken).order_by(ApiToken.name))
        ]


def delete_token(app: App, name: str) -> None:
    with app.db.session() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.name == name))
        if row is None:
            raise NotFoundError(f"no token named {name!r}", code="TokenNotFound", target="name")
        s.delete(row)


def verify_token(app: App, token: str | None) -> TokenInfo:
    """The token's record; ``AuthError`` when it is missing or unknown."""
    if not token:
        raise AuthError(
            "the request has no bearer token: send 'Authorization: Bearer <token>'"
            " (create one with 'bai token create')",
            code="AuthenticationFailed",
        )
    with app.db.reading() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.token_hash == _hash(token)))
        if row is None:
            raise AuthError("the bearer token is not valid", code="InvalidAuthenticationToken")
        return TokenInfo(row.name, row.created_at)

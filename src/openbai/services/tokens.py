"""API tokens of ``bai serve``: created once, stored as hashes, checked on every request.

A token is 32 random bytes (``bai_`` + URL-safe base64). Only its SHA-256 is stored: a
random token of that length needs no slow hash, and a copy of the database reveals no
token. The token itself is shown once, when it is created.

A token has one of Batch AI's RBAC roles (reader, contributor, owner), may expire, and may be
limited to some workspaces (``resourceGroup/name``); what each role may do on each route is
``openbai.http.permissions``' table.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import bindparam, delete, select

from openbai.errors import AuthError, ConflictError, NotFoundError, SpecError
from openbai.installation import App
from openbai.spec import check_name
from openbai.spec.common import RESOURCE_GROUP_PATTERN, parse_duration
from openbai.store.models import ApiToken, WebSession, utcnow

PREFIX = "bai_"
_SHORT_LIFETIME = re.compile(r"(?P<number>\d+)(?P<unit>[dhm])")
_UNITS = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}


class Role(StrEnum):
    """Batch AI's RBAC roles, least first: a role may do all that the ones before it may."""

    READER = "reader"
    CONTRIBUTOR = "contributor"
    OWNER = "owner"

    def includes(self, other: Role) -> bool:
        order = list(Role)
        return order.index(self) >= order.index(other)


@dataclass(frozen=True)
class TokenInfo:
    name: str
    created: datetime
    role: Role = Role.OWNER
    expires: datetime | None = None
    #: ``resourceGroup/workspace`` names it is limited to; empty: every workspace
    workspaces: tuple[str, ...] = ()

    @property
    def scoped(self) -> bool:
        return bool(self.workspaces)

    def covers(self, resource_group: str, workspace: str) -> bool:
        """Whether the workspace is one this token may reach."""
        return not self.workspaces or f"{resource_group}/{workspace}" in self.workspaces

    @classmethod
    def of(cls, row: Any) -> TokenInfo:
        """The record of an ``ApiToken`` or of a row of its columns ``_SHOWN``."""
        return cls(row.name, row.created_at, Role(row.role), row.expires_at, tuple(row.workspaces))


_SHOWN = (
    ApiToken.name,
    ApiToken.created_at,
    ApiToken.role,
    ApiToken.expires_at,
    ApiToken.workspaces,
)


_BY_HASH = select(*_SHOWN).where(ApiToken.token_hash == bindparam("token_hash"))


def hash_secret(secret: str) -> str:
    """The SHA-256 kept in place of a token or a session id."""
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_lifetime(value: str, *, field: str = "expiresIn") -> timedelta:
    """``30d``, ``12h``, ``90m`` or an ISO 8601 duration (``P30D``, ``PT12H``), above zero."""
    text = value.strip()
    short = _SHORT_LIFETIME.fullmatch(text)
    try:
        lifetime = int(short["number"]) * _UNITS[short["unit"]] if short else parse_duration(text)
    except (ValueError, OverflowError):
        raise SpecError(
            f"{field}: {value!r} is not a lifetime; use 30d, 12h, 90m or ISO 8601 (P30D, PT12H)",
            target=field,
        ) from None
    if lifetime <= timedelta(0):
        raise SpecError(f"{field}: {value!r} must be longer than zero", target=field)
    return lifetime


def workspace_scope(
    app: App, names: Iterable[str], *, field: str = "workspaces"
) -> tuple[str, ...]:
    """``ws`` (in the installation's default resource group) or ``rg/ws``, as ``rg/ws``."""
    scope: list[str] = []
    for name in names:
        rg, _, ws = name.rpartition("/")
        rg = rg or app.settings.resource_group
        if not RESOURCE_GROUP_PATTERN.fullmatch(rg) or len(rg) > 90:
            raise SpecError(f"{field}: {name!r} names no valid resource group", target=field)
        check_name(ws, field=field)
        if f"{rg}/{ws}" not in scope:
            scope.append(f"{rg}/{ws}")
    return tuple(scope)


def create_token(
    app: App,
    name: str,
    *,
    role: Role = Role.OWNER,
    lifetime: timedelta | None = None,
    workspaces: Iterable[str] = (),
) -> tuple[TokenInfo, str]:
    """A new token named ``name``: its record and the token (never retrievable again)."""
    check_name(name, field="name")
    scope = workspace_scope(app, workspaces)
    token = PREFIX + secrets.token_urlsafe(32)
    try:
        expires = utcnow() + lifetime if lifetime is not None else None
    except OverflowError:
        raise SpecError(
            "expiresIn: the token would expire after the year 9999", target="expiresIn"
        ) from None
    with app.db.session() as s:
        if s.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
            raise ConflictError(
                f"a token named {name!r} already exists", code="TokenAlreadyExists", target="name"
            )
        row = ApiToken(
            name=name,
            token_hash=hash_secret(token),
            role=Role(role).value,
            expires_at=expires,
            workspaces=list(scope),
        )
        s.add(row)
        s.flush()
        return TokenInfo.of(row), token


def list_tokens(app: App) -> list[TokenInfo]:
    with app.db.reading() as s:
        return [TokenInfo.of(r) for r in s.scalars(select(ApiToken).order_by(ApiToken.name))]


def delete_token(app: App, name: str) -> None:
    """Delete a token and end its browser sessions, in one transaction."""
    with app.db.session() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.name == name))
        if row is None:
            raise NotFoundError(f"no token named {name!r}", code="TokenNotFound", target="name")
        s.execute(delete(WebSession).where(WebSession.token_id == row.id))
        s.delete(row)


def check_expiry(info: TokenInfo) -> None:
    if info.expires is not None and info.expires <= utcnow():
        raise AuthError(
            f"the token {info.name!r} expired at {info.expires.isoformat()}",
            code="ExpiredAuthenticationToken",
        )


def verify_token(app: App, token: str | None) -> TokenInfo:
    """The token's record; ``AuthError`` when it is missing, unknown or expired."""
    if not token:
        raise AuthError(
            "the request has no bearer token: send 'Authorization: Bearer <token>'"
            " (create one with 'bai token create')",
            code="AuthenticationFailed",
        )
    # every request of the server comes here: one prepared query of the columns
    row = app.db.first(_BY_HASH, {"token_hash": hash_secret(token)})
    if row is None:
        raise AuthError("the bearer token is not valid", code="InvalidAuthenticationToken")
    info = TokenInfo.of(row)
    check_expiry(info)
    return info

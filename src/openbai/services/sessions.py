"""Browser sessions of the web page, kept on the server.

Logging in with a token makes a session: a random id for the browser's cookie, of which the
table keeps only the SHA-256 (as for tokens). Every request looks the session up, so logging
out or deleting its token ends it at once, whatever copy of the cookie a browser kept. A
session lasts :data:`LIFETIME`, never past its token's expiry.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from openbai.errors import AuthError
from openbai.installation import App
from openbai.services.tokens import TokenInfo, check_expiry, hash_secret, verify_token
from openbai.store.models import ApiToken, WebSession, utcnow

LIFETIME = timedelta(hours=12)
#: how stale ``last_seen_at`` may get before a request writes it again (a page polls often)
TOUCH_AFTER = timedelta(minutes=1)


@dataclass(frozen=True)
class BrowserLogin:
    """A new session: the id for the cookie (never stored) and whose token it is."""

    session_id: str
    token: TokenInfo
    expires: datetime


def _ended() -> AuthError:
    return AuthError("the session has ended; log in again", code="SessionEnded")


def open_session(app: App, token: str) -> BrowserLogin:
    """A session of ``token``; ``AuthError`` when it is not a valid token."""
    info = verify_token(app, token)
    session_id = secrets.token_urlsafe(32)
    expires = utcnow() + LIFETIME
    if info.expires is not None:
        expires = min(expires, info.expires)
    with app.db.session() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.token_hash == hash_secret(token)))
        if row is None:  # deleted since it was verified
            raise _ended()
        s.add(WebSession(id_hash=hash_secret(session_id), token_id=row.id, expires_at=expires))
    return BrowserLogin(session_id, info, expires)


def resume_session(app: App, session_id: str) -> TokenInfo:
    """The token of a live session; ``AuthError`` when it has ended or never was."""
    if not session_id:
        raise _ended()
    now = utcnow()
    with app.db.reading() as s:
        row = s.scalar(select(WebSession).where(WebSession.id_hash == hash_secret(session_id)))
        if row is None:
            raise _ended()
        info, expires, seen = TokenInfo.of(row.token), row.expires_at, row.last_seen_at
    if expires <= now:
        end_session(app, session_id)
        raise _ended()
    check_expiry(info)
    if now - seen > TOUCH_AFTER:
        with app.db.session() as s:
            row = s.scalar(select(WebSession).where(WebSession.id_hash == hash_secret(session_id)))
            if row is not None:
                row.last_seen_at = now
    return info


def end_session(app: App, session_id: str) -> None:
    """Forget a session (logging out); nothing happens for one that has already ended."""
    with app.db.session() as s:
        s.execute(delete(WebSession).where(WebSession.id_hash == hash_secret(session_id)))


def count_sessions(app: App, token_name: str) -> int:
    """Live sessions of a token (``bai token list`` shows them)."""
    with app.db.reading() as s:
        rows = s.scalars(
            select(WebSession.expires_at)
            .join(ApiToken, WebSession.token_id == ApiToken.id)
            .where(ApiToken.name == token_name)
        )
        now = utcnow()
        return sum(1 for expires in rows if expires > now)

"""The audit log: who (a token's name) did what (an action such as ``job.terminate``) to which
resource (an ARM id, or a storage path), with what result, and when.

Every mutating API call and web action is recorded here by the server, refused ones too
(``denied``), and written as one JSON line to the logger ``openbai.audit``, so the server's
log carries it as well as the store.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import insert, select

from openbai.installation import App
from openbai.spec.times import iso
from openbai.store.models import AuditEntry as AuditRow
from openbai.store.models import utcnow

log = logging.getLogger("openbai.audit")


@dataclass(frozen=True)
class AuditEntry:
    token: str
    action: str
    resource: str
    #: succeeded, denied (401/403) or failed
    result: str
    #: the HTTP status answered
    status: int
    time: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class AuditFilter:
    token: str | None = None
    action: str | None = None
    #: a substring of the resource
    resource: str | None = None
    since: datetime | None = None


_INSERT = insert(AuditRow)


def result_of(status: int) -> str:
    if status in (401, 403):
        return "denied"
    return "succeeded" if status < 400 else "failed"


def record(app: App, entry: AuditEntry) -> None:
    app.db.append(
        _INSERT,
        {
            "time": entry.time,
            "token_name": entry.token,
            "action": entry.action,
            "resource": entry.resource,
            "result": entry.result,
            "status": entry.status,
        },
    )
    log.info(
        json.dumps(
            {
                "time": iso(entry.time),
                "token": entry.token,
                "action": entry.action,
                "resource": entry.resource,
                "result": entry.result,
                "status": entry.status,
            }
        )
    )


def list_entries(
    app: App, where: AuditFilter = AuditFilter(), *, offset: int = 0, limit: int | None = None
) -> list[AuditEntry]:
    """Matching entries, oldest first."""
    query = select(AuditRow).order_by(AuditRow.id)
    if where.token is not None:
        query = query.where(AuditRow.token_name == where.token)
    if where.action is not None:
        query = query.where(AuditRow.action == where.action)
    if where.resource:
        query = query.where(AuditRow.resource.contains(where.resource, autoescape=True))
    if where.since is not None:
        query = query.where(AuditRow.time >= where.since)
    with app.db.reading() as s:
        rows = s.scalars(query.offset(offset).limit(limit))
        return [
            AuditEntry(r.token_name, r.action, r.resource, r.result, r.status, r.time) for r in rows
        ]

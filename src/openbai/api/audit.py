"""``/openbai/audit``: the audit log, for owners limited to no workspace (``bai audit list``
through a server)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from openbai.api.auth import AUTHENTICATED
from openbai.api.paging import Page, page_of
from openbai.errors import SpecError
from openbai.http.json_response import JSONResponse
from openbai.http.service import Service
from openbai.http.views import audit_entry_view
from openbai.services import audit

router = APIRouter(dependencies=AUTHENTICATED, tags=["openbai"])


@router.get("/openbai/audit")
def list_audit(
    request: Request,
    app: Service,
    page: Page,
    token: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    resource: Annotated[str | None, Query(max_length=2048)] = None,
    since: Annotated[datetime | None, Query()] = None,
) -> JSONResponse:
    """Entries oldest first, filtered by token name, action, a substring of the resource and
    the time they were made at or after (ISO 8601, with a time zone)."""
    if since is not None and since.tzinfo is None:
        raise SpecError("since: give a time zone (2030-01-01T00:00:00Z)", target="since")
    where = audit.AuditFilter(token=token, action=action, resource=resource, since=since)
    rows = page.fetch(audit.list_entries, app, where)
    return JSONResponse(page_of(request, page, [audit_entry_view(e) for e in rows]))

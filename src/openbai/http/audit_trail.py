"""Recording mutating calls in the audit log, with the status they were answered.

The route's admission (:mod:`openbai.http.caller`) notes who does what to which resource;
:class:`AuditTrail`, around the whole server (the web page is mounted inside it), records the
note when the response starts, before its first byte leaves: a client that has its answer
finds the entry. A call that failed before answering is recorded as a 500.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openbai.installation import App
from openbai.services import audit

_NOTES = "openbai.audit"


@dataclass
class _Note:
    token: str
    action: str
    resource: str


def note(request: Request, token: str, action: str, resource: str) -> None:
    """Have this request recorded in the audit log once it is answered."""
    notes: list[_Note] | None = request.scope.get(_NOTES)
    if notes is not None:  # None: an application without the trail (no server around it)
        notes[:] = [_Note(token, action, resource)]


class AuditTrail:
    """Pure ASGI middleware (streams pass through untouched)."""

    def __init__(self, app: ASGIApp, service: App):
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        notes: list[_Note] = []
        scope[_NOTES] = notes  # the web page's mount shares this list with its own scope
        answered = False

        async def send_recorded(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start" and not answered:
                answered = True
                await self._record(notes, message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_recorded)
        except BaseException:
            if not answered:
                answered = True
                await self._record(notes, 500)
            raise

    async def _record(self, notes: list[_Note], status: int) -> None:
        if not notes:
            return
        n = notes[0]
        entry = audit.AuditEntry(n.token, n.action, n.resource, audit.result_of(status), status)
        await run_in_threadpool(audit.record, self.service, entry)

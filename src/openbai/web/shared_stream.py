"""The one event stream a browser's tabs share: the live views of all its open pages.

Over HTTP/1.1 a browser opens at most six connections to a host, for all its tabs together,
and an event stream holds one for as long as it is open: with one stream per page the
seventh open job page did not even load. So the pages do not open streams: a SharedWorker
(``static/openbai-live.js``) holds one ``EventSource`` to ``/live`` for all of them, naming
every view it carries in the query, and tells each tab what is its. The alternatives were
weighed: a leader tab elected with Web Locks relaying over BroadcastChannel dies with its
tab and is throttled in the background; short polls hold no connection but make each line
wait for the next poll and keep every connection busy in turn.

The views are in the URL, not in server memory: opening or closing one reopens the stream
with the offsets each view reached (no loss, no line twice), which also works with several
server processes behind one address. Each view is checked on its own, as its own page's
stream is (:func:`openbai.http.permissions.authorize` with that route's rule): a view of a
job out of the token's reach, or a job deleted, ends that view with a ``failure`` and the
others go on.

A view in the query: nine comma-separated fields, each percent-encoded::

    view=<id>,<offset or empty: its last lines>,<metrics 0|1>,<rg>,<ws>,<exp>,<job>,<directory>,<path>

Every event names the view it belongs to: ``{"view": id, "kind": ..., "data": ..., "at": ...}``
(kinds as in :mod:`openbai.web.live`); a ``failure`` of view ``null`` ends them all (the
session has ended).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from openbai.errors import OpenBaiError, SpecError
from openbai.http.caller import Caller
from openbai.http.permissions import WEB_RULES, authorize, rule_for
from openbai.http.service import Service
from openbai.installation import App
from openbai.services.tokens import TokenInfo
from openbai.spec.common import check_name, check_resource_group
from openbai.web.events import Item, event_stream, merged, tagged, until
from openbai.web.links import JobKey
from openbai.web.live import (
    LOGGED_OUT,
    SESSION_CHECK,
    View,
    session_check,
    start_of,
    view_items,
)
from openbai.web.params import JOB_PATH, file_parts
from openbai.web.session import Browser

router = APIRouter()

#: views one stream carries at most (a browser's open pages)
MAX_VIEWS = 64
MAX_VIEW_CHARS = 2048
FIELDS = ("id", "offset", "metrics", "rg", "ws", "exp", "job", "directory", "path")
#: a view's own page stream's rule is its rule here
VIEW_RULE = rule_for(WEB_RULES, "GET", JOB_PATH + "/live")
_DIGITS = re.compile(r"[0-9]{1,15}")


def parse_view(text: str, index: int) -> tuple[int, View]:
    """The id and the view of one ``view`` query value (``SpecError`` naming the field)."""
    field = f"view[{index}]"
    if len(text) > MAX_VIEW_CHARS:
        raise SpecError(f"{field} is longer than {MAX_VIEW_CHARS} characters", target=field)
    parts = text.split(",")
    if len(parts) != len(FIELDS):
        raise SpecError(
            f"{field} must have {len(FIELDS)} comma-separated fields ({', '.join(FIELDS)}),"
            f" not {len(parts)}",
            target=field,
        )
    try:
        given = dict(zip(FIELDS, (unquote(p, errors="strict") for p in parts), strict=True))
    except UnicodeDecodeError:
        raise SpecError(f"{field} is not percent-encoded UTF-8", target=field) from None
    for name in ("id", "offset"):
        if not (_DIGITS.fullmatch(given[name]) or (name == "offset" and given[name] == "")):
            raise SpecError(f"{field}.{name} must be a whole number", target=f"{field}.{name}")
    if given["metrics"] not in ("0", "1"):
        raise SpecError(f"{field}.metrics must be 0 or 1", target=f"{field}.metrics")
    check_resource_group(given["rg"], field=f"{field}.rg")
    for name in ("ws", "exp", "job"):
        check_name(given[name], field=f"{field}.{name}")
    if not 0 < len(given["directory"]) <= 64:
        raise SpecError(
            f"{field}.directory must be 1 to 64 characters", target=f"{field}.directory"
        )
    try:
        folder, name = file_parts(given["path"])
    except SpecError as exc:
        raise SpecError(f"{field}.{exc.message}", target=f"{field}.path") from None
    key = JobKey(given["rg"], given["ws"], given["exp"], given["job"])
    offset = int(given["offset"]) if given["offset"] else None
    view = View(key, given["directory"], folder, name, offset, given["metrics"] == "1")
    return int(given["id"]), view


def parse_views(values: list[str]) -> dict[int, View]:
    if not values:
        raise SpecError("view: name at least one view to follow", target="view")
    if len(values) > MAX_VIEWS:
        raise SpecError(f"view: at most {MAX_VIEWS} views, not {len(values)}", target="view")
    views: dict[int, View] = {}
    for index, text in enumerate(values):
        number, view = parse_view(text, index)
        if number in views:
            raise SpecError(f"view[{index}].id {number} is given twice", target=f"view[{index}].id")
        views[number] = view
    return views


async def _view_events(app: App, token: TokenInfo, number: int, view: View) -> AsyncIterator[bytes]:
    try:
        authorize(token, VIEW_RULE, {"rg": view.key.rg, "ws": view.key.ws})
        started, skipped = await start_of(app, view)
    except OpenBaiError as exc:
        yield tagged(number, Item("failure", {"message": exc.message}))
        return
    async for item in view_items(app, started, skipped=skipped):
        yield tagged(number, item)


@router.get("/live")
async def follow_views(
    request: Request,
    app: Service,
    session: Browser,
    token: Caller,
    view: Annotated[list[str], Query()],
) -> StreamingResponse:
    """The events of several views (see the module), until every view has ended."""
    views = parse_views(view)
    streams = [_view_events(app, token, n, v) for n, v in views.items()]
    farewell = tagged(None, LOGGED_OUT)  # of no one view: all end
    alive = session_check(request, app)
    return event_stream(until(merged(*streams), alive, SESSION_CHECK, farewell))

"""Live views as server-sent events: an output file as the job writes it, the metrics its
stdout prints (for the chart), and the job's state.

A view is one file followed in one tab: the log of a job's page (with the job's metrics),
or a file's page. Its events are :class:`~openbai.web.events.Item` s: ``text`` (a JSON
string; the page turns ``\\r`` and ``\\n`` into lines) with the byte offset reached, so a
browser that lost the connection goes on where it was; ``skipped`` (the bytes before a
large file's last lines, loaded on demand); ``metrics``; ``state`` whenever the job's
changes (a queued job is waiting for nodes); then one ``end`` once the job has ended and
every byte was sent, or a ``failure`` naming what went wrong.

The pages take their views from the one stream their browser's tabs share
(:mod:`openbai.web.shared_stream`); the routes here serve one view per stream, for scripts
and for the earlier lines of a view.
"""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from openbai.errors import AuthError, NotFoundError, OpenBaiError
from openbai.http.service import Service
from openbai.installation import App
from openbai.services import files, jobs, sessions
from openbai.vocabulary import FINAL_STATES, ProvisioningState
from openbai.web.events import (
    COMMENT,
    Item,
    event,
    event_stream,
    in_thread,
    merged,
    plain,
    until,
)
from openbai.web.links import JobKey
from openbai.web.metrics import MetricReader
from openbai.web.params import JOB_PATH, DirectoryId, InnerPath, Job, file_parts
from openbai.web.session import COOKIE, Browser

router = APIRouter()

#: most bytes of a file in one event
EVENT_BYTES = 64 * 1024
#: the file whose metric lines are charted
METRICS_FILE = "stdout.txt"
#: bytes at a file's end that a view opens with (a 25 MB log shows at once); earlier ones
#: are loaded on demand, as many at a time
TAIL_BYTES = 256 * 1024
#: seconds between two looks at a job's state
STATE_POLL = 0.5
#: seconds between two looks at the session of an open stream (logging out ends it)
SESSION_CHECK = 5.0
#: what a queued job is doing, as the explorer says it
WAITING = "waiting for nodes"

Source = Callable[[Callable[[], bool]], Iterator[bytes]]


@dataclass(frozen=True)
class View:
    """What one live view follows: a file of one of a job's output directories from a byte
    offset (None: from a line start near its end), and whether the job's metrics come too."""

    key: JobKey
    directory: str
    folder: str
    name: str
    offset: int | None = None
    metrics: bool = False


def follower(
    app: App, key: JobKey, directory: str, folder: str, name: str, offset: int,
    poll_interval: float = 0.05,
) -> Source:  # fmt: skip
    def source(stop: Callable[[], bool]) -> Iterator[bytes]:
        return files.follow_output_file(
            app,
            key.rg,
            key.ws,
            key.exp,
            key.job,
            name,
            directory_id=directory,
            path=folder,
            offset=offset,
            poll_interval=poll_interval,
            stop=stop,
        )

    return source


def read_between(
    app: App, key: JobKey, directory: str, folder: str, name: str, start: int, end: int
) -> bytes:
    """Bytes ``[start, end)`` of a file (fewer if it is shorter)."""
    found = bytearray()
    chunks = files.follow_output_file(
        app, key.rg, key.ws, key.exp, key.job, name,
        directory_id=directory, path=folder, offset=start, stop=lambda: True,
    )  # fmt: skip
    for chunk in chunks:
        found += chunk
        if len(found) >= end - start:
            break
    return bytes(found[: end - start])


def line_start(
    app: App, key: JobKey, directory: str, folder: str, name: str, start: int, end: int
) -> int:
    """The first start of a line at or after ``start`` (before ``end``), so that a view
    never opens in the middle of a line; ``start`` when the line is longer than the span."""
    if start <= 0:
        return 0
    found = read_between(app, key, directory, folder, name, start - 1, end).find(b"\n")
    return start if found < 0 else start + found


def tail_offset(app: App, key: JobKey, directory: str, folder: str, name: str) -> int:
    """Where a view of the file opens: at a line start within its last :data:`TAIL_BYTES`."""
    try:
        info, _ = files.read_output_file(
            app, key.rg, key.ws, key.exp, key.job, name,
            directory_id=directory, path=folder, limit=0,
        )  # fmt: skip
    except NotFoundError:
        return 0
    if info.size <= TAIL_BYTES:
        return 0
    return line_start(app, key, directory, folder, name, info.size - TAIL_BYTES, info.size)


async def _check(app: App, key: JobKey, directory: str, folder: str, name: str) -> None:
    """Fail before streaming (with a status code) when the job, folder or path is wrong, or
    the file is one storage refuses (a symlink out of the volume, a folder); a file not
    written yet is fine: following waits for it."""
    where = (app, key.rg, key.ws, key.exp, key.job, name)
    await run_in_threadpool(
        partial(files.output_file_location, *where, directory_id=directory, path=folder)
    )
    try:
        await run_in_threadpool(
            partial(files.read_output_file, *where, directory_id=directory, path=folder, limit=0)
        )
    except NotFoundError:
        pass


async def start_of(app: App, view: View) -> tuple[View, bool]:
    """``view`` checked (errors as :func:`_check`) with the offset it starts at, and whether
    that is near the file's end (the bytes before are skipped, to be loaded on demand)."""
    await _check(app, view.key, view.directory, view.folder, view.name)
    if view.offset is not None:
        return view, False
    where = (app, view.key, view.directory, view.folder, view.name)
    offset = await run_in_threadpool(tail_offset, *where)
    return replace(view, offset=offset), True


class _Position:
    """Bytes of the log sent so far (the text events' offset)."""

    def __init__(self, offset: int) -> None:
        self.bytes = offset


async def _log_items(
    source: Source, position: _Position, reader: MetricReader | None
) -> AsyncIterator[Item | None]:
    """The log's text, and the metrics in the same bytes when ``reader`` is given."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    async for chunk in in_thread(source):
        if chunk is None:
            yield None
            continue
        for start in range(0, len(chunk), EVENT_BYTES):
            piece = chunk[start : start + EVENT_BYTES]
            position.bytes += len(piece)
            text = decoder.decode(piece)
            if text:
                yield Item("text", text, position.bytes - len(decoder.getstate()[0]))
        if reader is not None and (points := reader.feed(chunk)):
            yield Item("metrics", [p.to_json() for p in points])
    tail = decoder.decode(b"", True)
    if tail:
        yield Item("text", tail, position.bytes)
    if reader is not None and (last := reader.feed(b"", final=True)):
        yield Item("metrics", [p.to_json() for p in last])


async def _metric_items(source: Source) -> AsyncIterator[Item | None]:
    reader = MetricReader()
    async for chunk in in_thread(source):
        points = reader.feed(chunk) if chunk is not None else None
        if points is None:
            yield None
        elif points:
            yield Item("metrics", [p.to_json() for p in points])
    last = reader.feed(b"", final=True)
    if last:
        yield Item("metrics", [p.to_json() for p in last])


def shown_state(app: App, key: JobKey) -> dict[str, str | bool | None]:
    """The job's state as the explorer shows it: ``deleting`` while it is being deleted
    (as az shows it), and what a queued job waits for."""
    record = jobs.get_job(app, key.rg, key.ws, key.exp, key.job)
    state = record.execution_state
    shown = "deleting" if record.provisioning.state == ProvisioningState.DELETING else state
    return {
        "state": shown,
        "note": WAITING if shown == "queued" else None,
        "ended": state in FINAL_STATES,
    }


async def _state_items(app: App, key: JobKey) -> AsyncIterator[Item | None]:
    """The job's state now and at each change, until it has ended."""
    last = None
    while True:
        state = await run_in_threadpool(shown_state, app, key)
        if state != last:
            yield Item("state", state)
            last = state
        if state["ended"]:
            return
        await asyncio.sleep(STATE_POLL)


async def view_items(app: App, view: View, *, skipped: bool = False) -> AsyncIterator[Item | None]:
    """The events of ``view`` (started: see :func:`start_of`), then ``end`` once its job has
    ended, or ``failure``; None for a heartbeat."""
    offset = view.offset or 0
    position = _Position(offset)
    where = (app, view.key, view.directory, view.folder, view.name)
    try:
        if skipped and offset:
            yield Item("skipped", {"bytes": offset})
        # a job's stdout from its start is read once, for both its text and its metrics
        whole_stdout = (view.directory, view.folder, view.name, offset) == (
            "stdouterr", "", METRICS_FILE, 0,
        )  # fmt: skip
        reader = MetricReader() if view.metrics and whole_stdout else None
        streams = [
            _log_items(follower(*where, offset), position, reader),
            _state_items(app, view.key),
        ]
        if view.metrics and not whole_stdout:
            metrics = follower(app, view.key, "stdouterr", "", METRICS_FILE, 0, 0.25)
            streams.append(_metric_items(metrics))
        async for item in merged(*streams):
            yield item
        yield Item("end", {"bytes": position.bytes})
    except OpenBaiError as exc:
        yield Item("failure", {"message": exc.message})


def session_check(request: Request, app: App) -> Callable[[], bool]:
    """Whether the session that opened a stream still lives (a blocking look)."""
    session_id = request.cookies.get(COOKIE) or ""

    def alive() -> bool:
        try:
            sessions.resume_session(app, session_id)
        except AuthError:
            return False
        return True

    return alive


#: the last event of a stream whose session has ended (logged out, token deleted)
LOGGED_OUT = Item("failure", {"message": "the session has ended: log in again"})


def resumed_at(last_event_id: str | None) -> int | None:
    """The offset a browser that reconnects asks for (``Last-Event-ID``)."""
    return int(last_event_id) if last_event_id is not None and last_event_id.isdigit() else None


async def _one_view(request: Request, app: App, view: View) -> StreamingResponse:
    started, skipped = await start_of(app, view)
    items = view_items(app, started, skipped=skipped)
    alive = session_check(request, app)
    chunks = (plain(i) async for i in until(items, alive, SESSION_CHECK, LOGGED_OUT))
    return event_stream(chunks)


@router.get(JOB_PATH + "/live")
async def follow_job(
    request: Request,
    app: Service,
    session: Browser,
    key: Job,
    file: Annotated[str, Query(max_length=64)] = METRICS_FILE,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    """One view of a job page: a log file of its ``stdouterr`` directory from its last lines
    (or ``Last-Event-ID``), the metrics of its stdout and its state, until the job has
    ended. The chart keys points by step, so metrics sent again after a reconnection or a
    switch of log replace themselves."""
    folder, name = file_parts(file)
    view = View(key, "stdouterr", folder, name, resumed_at(last_event_id), metrics=True)
    return await _one_view(request, app, view)


@router.get(JOB_PATH + "/files/{directory}/stream")
async def follow_file(
    request: Request,
    app: Service,
    session: Browser,
    key: Job,
    directory: DirectoryId,
    path: InnerPath,
    tail: bool = False,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    """A file's text and its job's state from the start (or with ``tail``, from a line
    near its end; or from ``Last-Event-ID``) until the job has ended."""
    folder, name = file_parts(path)
    offset = resumed_at(last_event_id)
    if offset is None and not tail:
        offset = 0
    return await _one_view(request, app, View(key, directory, folder, name, offset))


@router.get(JOB_PATH + "/files/{directory}/earlier")
async def earlier_text(
    app: Service,
    session: Browser,
    key: Job,
    directory: DirectoryId,
    path: InnerPath,
    end: Annotated[int, Query(ge=0, le=2**50)],
) -> Response:
    """The lines before byte ``end`` (up to :data:`TAIL_BYTES` of them, from a line start),
    as text; ``X-Start`` is where they begin, so the page asks for the ones before next."""
    folder, name = file_parts(path)
    await _check(app, key, directory, folder, name)
    begin = max(0, end - TAIL_BYTES)
    start = await run_in_threadpool(line_start, app, key, directory, folder, name, begin, end)
    data = await run_in_threadpool(read_between, app, key, directory, folder, name, start, end)
    headers = {"X-Start": str(start), "Cache-Control": "no-store"}
    return PlainTextResponse(data.decode("utf-8", errors="replace"), headers=headers)


async def metric_events(source: Source) -> AsyncIterator[bytes]:
    """The metric points of a file (plain ``message`` events), then ``end``."""
    try:
        async for item in _metric_items(source):
            yield COMMENT if item is None else event(item.data)
        yield event({}, name="end")
    except OpenBaiError as exc:
        yield event({"message": exc.message}, name="failure")


@router.get(JOB_PATH + "/metrics")
async def follow_metrics(
    request: Request, app: Service, session: Browser, key: Job
) -> StreamingResponse:
    """Metric points of the job's stdout, from its first line until the job has ended (or
    its session has: then a ``failure``)."""
    await _check(app, key, "stdouterr", "", METRICS_FILE)
    source = follower(app, key, "stdouterr", "", METRICS_FILE, 0)
    alive = session_check(request, app)
    return event_stream(until(metric_events(source), alive, SESSION_CHECK, plain(LOGGED_OUT)))

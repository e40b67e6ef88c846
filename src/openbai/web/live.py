"""Live views as server-sent events: an output file as the job writes it, and the metrics
its stdout prints (for the chart).

A job's page holds one stream (``/live``) that carries both its log and its metrics
(``metrics`` events): browsers allow six connections per host, so two streams per page
froze the explorer at the third open job. When the log shown is ``stdout.txt`` it is read
once for both.

A file's events carry its text (JSON strings; the page turns ``\\r`` and ``\\n`` into lines)
with the byte offset reached as the event id, so a browser that lost the connection goes
on where it was (EventSource sends ``Last-Event-ID``). Both streams end with an ``end``
event once the job has ended and every byte was sent; a storage failure ends them with a
``failure`` event naming it.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from openbai.errors import NotFoundError, OpenBaiError
from openbai.http.service import Service
from openbai.installation import App
from openbai.services import files
from openbai.web.events import COMMENT, event, event_stream, in_thread, merged
from openbai.web.links import JobKey
from openbai.web.metrics import MetricReader
from openbai.web.params import JOB_PATH, DirectoryId, InnerPath, Job, file_parts
from openbai.web.session import Browser

router = APIRouter()

#: most bytes of a file in one event
EVENT_BYTES = 64 * 1024
#: the file whose metric lines are charted
METRICS_FILE = "stdout.txt"
#: bytes at a file's end that a view opens with (a 25 MB log shows at once); earlier ones
#: are loaded on demand, as many at a time
TAIL_BYTES = 256 * 1024

Source = Callable[[Callable[[], bool]], Iterator[bytes]]


def follower(app: App, key: JobKey, directory: str, folder: str, name: str, offset: int) -> Source:
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


class _Position:
    """Bytes of the log sent so far (the events' id)."""

    def __init__(self, offset: int) -> None:
        self.bytes = offset


async def _log_chunks(
    source: Source, position: _Position, reader: MetricReader | None
) -> AsyncIterator[bytes]:
    """The log's text events, and the metrics in the same bytes when ``reader`` is given."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    async for chunk in in_thread(source):
        if chunk is None:
            yield COMMENT
            continue
        for start in range(0, len(chunk), EVENT_BYTES):
            piece = chunk[start : start + EVENT_BYTES]
            position.bytes += len(piece)
            text = decoder.decode(piece)
            if text:
                yield event(text, id=str(position.bytes - len(decoder.getstate()[0])))
        if reader is not None and (points := reader.feed(chunk)):
            yield event([p.to_json() for p in points], name="metrics")
    tail = decoder.decode(b"", True)
    if tail:
        yield event(tail, id=str(position.bytes))
    if reader is not None and (last := reader.feed(b"", final=True)):
        yield event([p.to_json() for p in last], name="metrics")


async def _metric_chunks(source: Source, name: str | None = "metrics") -> AsyncIterator[bytes]:
    reader = MetricReader()
    async for chunk in in_thread(source):
        points = reader.feed(chunk) if chunk is not None else None
        if points is None:
            yield COMMENT
        elif points:
            yield event([p.to_json() for p in points], name=name)
    last = reader.feed(b"", final=True)
    if last:
        yield event([p.to_json() for p in last], name=name)


def skipped(offset: int) -> bytes:
    """The bytes before the view's first line, not sent (the page offers to load them)."""
    return event({"bytes": offset}, name="skipped")


async def job_events(
    log: Source, offset: int, metrics: Source | None, *, tail: bool = False
) -> AsyncIterator[bytes]:
    """The log from ``offset`` and the metrics (read from the log itself when ``metrics`` is
    None), then one ``end`` once the job has ended."""
    position = _Position(offset)
    try:
        if tail and offset:
            yield skipped(offset)
        if metrics is None:
            events = _log_chunks(log, position, MetricReader())
        else:
            events = merged(_log_chunks(log, position, None), _metric_chunks(metrics))
        async for item in events:
            yield item
        yield event({"bytes": position.bytes}, name="end")
    except OpenBaiError as exc:
        yield event({"message": exc.message}, name="failure")


@router.get(JOB_PATH + "/live")
async def follow_job(
    app: Service,
    session: Browser,
    key: Job,
    file: Annotated[str, Query(max_length=64)] = METRICS_FILE,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    """A job page's one stream: a log file of its ``stdouterr`` directory and the metrics of
    its stdout, until the job has ended. The chart keys points by step, so metrics sent
    again after a reconnection or a switch of log replace themselves."""
    folder, name = file_parts(file)
    await _check(app, key, "stdouterr", folder, name)
    resumed = last_event_id is not None and last_event_id.isdigit()
    offset = (
        int(last_event_id)  # type: ignore[arg-type]
        if resumed
        else await run_in_threadpool(tail_offset, app, key, "stdouterr", folder, name)
    )
    log = follower(app, key, "stdouterr", folder, name, offset)
    shared = folder == "" and name == METRICS_FILE and offset == 0
    metrics = None if shared else follower(app, key, "stdouterr", "", METRICS_FILE, 0)
    return event_stream(job_events(log, offset, metrics, tail=not resumed))


async def text_events(source: Source, offset: int, *, tail: bool = False) -> AsyncIterator[bytes]:
    """A file's text from ``offset``, then ``end``."""
    position = _Position(offset)
    try:
        if tail and offset:
            yield skipped(offset)
        async for item in _log_chunks(source, position, None):
            yield item
        yield event({"bytes": position.bytes}, name="end")
    except OpenBaiError as exc:
        yield event({"message": exc.message}, name="failure")


async def metric_events(source: Source) -> AsyncIterator[bytes]:
    """The metric points of a file (plain ``message`` events), then ``end``."""
    try:
        async for item in _metric_chunks(source, name=None):
            yield item
        yield event({}, name="end")
    except OpenBaiError as exc:
        yield event({"message": exc.message}, name="failure")


@router.get(JOB_PATH + "/files/{directory}/stream")
async def follow_file(
    app: Service,
    session: Browser,
    key: Job,
    directory: DirectoryId,
    path: InnerPath,
    tail: bool = False,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    """A file's text from the start (or with ``tail``, from a line near its end; or from
    ``Last-Event-ID``) until the job has ended."""
    folder, name = file_parts(path)
    await _check(app, key, directory, folder, name)
    resumed = last_event_id is not None and last_event_id.isdigit()
    offset = 0
    if resumed:
        offset = int(last_event_id)  # type: ignore[arg-type]
    elif tail:
        offset = await run_in_threadpool(tail_offset, app, key, directory, folder, name)
    source = follower(app, key, directory, folder, name, offset)
    return event_stream(text_events(source, offset, tail=not resumed))


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


@router.get(JOB_PATH + "/metrics")
async def follow_metrics(app: Service, session: Browser, key: Job) -> StreamingResponse:
    """Metric points of the job's stdout, from its first line until the job has ended."""
    await _check(app, key, "stdouterr", "", METRICS_FILE)
    source = follower(app, key, "stdouterr", "", METRICS_FILE, 0)
    return event_stream(metric_events(source))

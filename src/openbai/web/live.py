"""Live views as server-sent events: an output file as the job writes it, and the metrics
its stdout prints (for the chart).

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

from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from openbai.errors import NotFoundError, OpenBaiError
from openbai.http.service import Service
from openbai.installation import App
from openbai.services import files
from openbai.web.events import COMMENT, event, event_stream, in_thread
from openbai.web.links import JobKey
from openbai.web.metrics import MetricReader
from openbai.web.params import JOB_PATH, DirectoryId, InnerPath, Job, file_parts
from openbai.web.session import Browser

router = APIRouter()

#: most bytes of a file in one event
EVENT_BYTES = 64 * 1024
#: the file whose metric lines are charted
METRICS_FILE = "stdout.txt"

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


async def text_events(source: Source, offset: int) -> AsyncIterator[bytes]:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    position = offset
    try:
        async for chunk in in_thread(source):
            if chunk is None:
                yield COMMENT
                continue
            for start in range(0, len(chunk), EVENT_BYTES):
                piece = chunk[start : start + EVENT_BYTES]
                position += len(piece)
                text = decoder.decode(piece)
                if text:
                    yield event(text, id=str(position - len(decoder.getstate()[0])))
        tail = decoder.decode(b"", True)
        if tail:
            yield event(tail, id=str(position))
        yield event({"bytes": position}, name="end")
    except OpenBaiError as exc:
        yield event({"message": exc.message}, name="failure")


async def metric_events(source: Source) -> AsyncIterator[bytes]:
    reader = MetricReader()
    try:
        async for chunk in in_thread(source):
            points = reader.feed(chunk) if chunk is not None else None
            if points is None:
                yield COMMENT
            elif points:
                yield event([p.to_json() for p in points])
        last = reader.feed(b"", final=True)
        if last:
            yield event([p.to_json() for p in last])
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
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    """A file's text from the start (or ``Last-Event-ID``) until the job has ended."""
    folder, name = file_parts(path)
    await _check(app, key, directory, folder, name)
    offset = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
    return event_stream(text_events(follower(app, key, directory, folder, name, offset), offset))


@router.get(JOB_PATH + "/metrics")
async def follow_metrics(app: Service, session: Browser, key: Job) -> StreamingResponse:
    """Metric points of the job's stdout, from its first line until the job has ended."""
    await _check(app, key, "stdouterr", "", METRICS_FILE)
    source = follower(app, key, "stdouterr", "", METRICS_FILE, 0)
    return event_stream(metric_events(source))

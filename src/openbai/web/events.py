"""Server-sent events fed by a blocking source (a file followed through storage).

The source runs in a thread of its own, not in the server's worker pool: a follower waits
as long as the job runs, and a pool slot held per open page would soon starve the API. The
source is told to stop (``stop()`` turns true) as soon as the browser goes away, which the
server notices at the latest at the next heartbeat, so no thread outlives its page by more
than that.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

T = TypeVar("T")

#: seconds of silence after which a comment is sent, to keep proxies and the check alive
HEARTBEAT = 10.0
#: items the source may run ahead of a slow browser
DEPTH = 4
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def event(data: Any, *, name: str | None = None, id: str | None = None) -> bytes:
    """One event; ``data`` is sent as JSON, so line breaks and markup travel as text."""
    lines = []
    if name is not None:
        lines.append(f"event: {name}")
    if id is not None:
        lines.append(f"id: {id}")
    lines.append(f"data: {json.dumps(data, ensure_ascii=False)}")
    return ("\n".join(lines) + "\n\n").encode()


COMMENT = b": heartbeat\n\n"


@dataclass(frozen=True)
class Item:
    """One event of a live view before it is written for a stream: its kind (``text``,
    ``skipped``, ``metrics``, ``state``, ``end``, ``failure``), its data, and for text the
    byte offset of the file reached with it (where a view that reconnects goes on)."""

    kind: str
    data: Any
    at: int | None = None


def plain(item: Item | None) -> bytes:
    """``item`` on a stream of one view: text as unnamed events whose id is the offset (so
    EventSource resumes there by itself), the rest named by their kind; None, a heartbeat."""
    if item is None:
        return COMMENT
    if item.kind == "text":
        return event(item.data, id=str(item.at))
    return event(item.data, name=item.kind)


def tagged(view: int | None, item: Item | None) -> bytes:
    """``item`` on a stream shared by several views: one unnamed event naming its view."""
    if item is None:
        return COMMENT
    return event({"view": view, "kind": item.kind, "data": item.data, "at": item.at})


async def in_thread(
    source: Callable[[Callable[[], bool]], Iterator[T]], *, heartbeat: float = HEARTBEAT
) -> AsyncGenerator[T | None, None]:
    """The items of ``source(stop)`` read in a thread; None after ``heartbeat`` idle seconds.

    Leaving the loop (the browser went away) sets ``stop``; the thread then returns at the
    source's next check or item.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    room = threading.Semaphore(DEPTH)
    stop = threading.Event()

    def put(kind: str, value: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
        except RuntimeError:  # the server's loop is gone
            stop.set()

    def run() -> None:
        items = source(stop.is_set)
        try:
            for item in items:
                while not room.acquire(timeout=0.5):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                put("item", item)
            put("end", None)
        except Exception as exc:
            put("error", exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    threading.Thread(target=run, name="openbai-web-follow", daemon=True).start()
    try:
        while True:
            try:
                kind, value = await asyncio.wait_for(queue.get(), heartbeat)
            except TimeoutError:
                yield None
                continue
            if kind == "end":
                return
            if kind == "error":
                raise value
            room.release()
            yield value
    finally:
        stop.set()


async def merged(*streams: AsyncIterator[T]) -> AsyncGenerator[T, None]:
    """The items of ``streams`` as each comes, until all have ended (an error in one ends
    all: it is raised here)."""
    queue: asyncio.Queue[tuple[bool, Any]] = asyncio.Queue(maxsize=DEPTH)

    async def pump(stream: AsyncIterator[T]) -> None:
        try:
            async for item in stream:
                await queue.put((True, item))
            await queue.put((False, None))
        except Exception as exc:
            await queue.put((False, exc))

    tasks = [asyncio.create_task(pump(s)) for s in streams]
    try:
        running = len(tasks)
        while running:
            more, value = await queue.get()
            if more:
                yield value
            elif value is None:
                running -= 1
            else:
                raise value
    finally:
        # a cancelled pump leaves its stream through the CancelledError, which ends the
        # stream's follower thread (in_thread's finally)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def until(
    items: AsyncIterator[T], alive: Callable[[], bool], every: float, farewell: T
) -> AsyncGenerator[T, None]:
    """The items of ``items`` while ``alive()`` (a blocking look, made in the worker pool at
    most every ``every`` seconds, when an item or heartbeat comes) holds; else ``farewell``
    last, and ``items`` is closed (its followers stop)."""
    looked = time.monotonic()
    async with aclosing(items):  # type: ignore[type-var]
        async for item in items:
            if time.monotonic() - looked >= every:
                looked = time.monotonic()
                if not await run_in_threadpool(alive):
                    yield farewell
                    return
            yield item


def event_stream(events: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream", headers=HEADERS)

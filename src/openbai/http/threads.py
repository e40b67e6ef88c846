"""The worker threads of a server process, in two pools.

A request's blocking work (a sync route, the audit entry, a session's lookup) runs on anyio's
default pool, kept small: every thread there that runs Python takes the interpreter from the
event loop, which serves the GETs of job state. With 40 such threads a busy worker's GET p99
was 115-125 ms under ``bench api``'s load on PostgreSQL; with 4, 50-54 ms.

What may block for long goes to a pool of its own, so that it never holds a request's thread:
a followed output file (waits for the job to write), reads and uploads of volume files (a
remote store, a big file) and downloads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")

#: threads for requests' blocking work, per worker process
REQUEST_THREADS = 4
#: threads for transfers and waits, per worker process
TRANSFER_THREADS = 40

_transfers: anyio.CapacityLimiter | None = None


def limit_request_threads() -> None:
    """Size the event loop's default pool (called in the server's lifespan, on its loop)."""
    anyio.to_thread.current_default_thread_limiter().total_tokens = REQUEST_THREADS


def _transfer_limiter() -> anyio.CapacityLimiter:
    global _transfers
    if _transfers is None:
        _transfers = anyio.CapacityLimiter(TRANSFER_THREADS)
    return _transfers


async def run_transfer(call: Callable[..., T], *args: object) -> T:
    """``call(*args)`` on a transfer thread."""
    return await anyio.to_thread.run_sync(call, *args, limiter=_transfer_limiter())


_DONE = object()


async def iterate_transfer(chunks: Iterator[T]) -> AsyncIterator[T]:
    """The items of ``chunks``, each read on a transfer thread (a StreamingResponse would
    read a sync iterator on the request pool)."""
    try:
        while True:
            item = await run_transfer(next, chunks, _DONE)
            if item is _DONE:
                return
            yield item
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            # a client that went away cancels the response's task: shielded, the source is
            # still closed here, on a transfer thread, and not later by the garbage
            # collector on the event loop's (a remote reader's connection, say)
            with anyio.CancelScope(shield=True):
                await run_transfer(close)

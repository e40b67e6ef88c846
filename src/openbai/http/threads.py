"""The worker threads of a server process, in two pools.

A request's blocking work (a sync route, the audit entry, a session's lookup) runs on anyio's
default pool, kept small: every thread there that runs Python takes the interpreter from the
event loop, which serves the GETs of job state. With 40 such threads a busy worker's GET p99
was 115-125 ms under ``bench api``'s load on PostgreSQL; with 4, 50-54 ms.

What may block for long goes to a pool of its own, so that it never holds a request's thread:
a followed output file (waits for the job to write), reads and uploads of volume files (a
remote store, a big file) and downloads.

A node command (``node exec`` through the server) may run for an hour: it has a third pool,
and a bounded number of slots, so that neither the request threads nor the transfers wait
for it. A worker runs at most ``NODE_EXEC_THREADS`` at once, and a token holds at most
``NODE_EXEC_PER_TOKEN`` of them: one tenant's commands cannot take them all, and a command
past either bound is refused at once (the API answers 429) rather than queued.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")

#: threads for requests' blocking work, per worker process
REQUEST_THREADS = 4
#: threads for transfers and waits, per worker process
TRANSFER_THREADS = 40
#: node commands running at once, per worker process (each waits on a thread of its own)
NODE_EXEC_THREADS = 16
#: of those, how many one token may run at once
NODE_EXEC_PER_TOKEN = 4

_transfers: anyio.CapacityLimiter | None = None
_node_commands: anyio.CapacityLimiter | None = None
#: token name -> its node commands running in this worker (read and changed on the event
#: loop's thread alone, so without a lock)
_running: Counter[str] = Counter()


class NoSlotError(Exception):
    """A node command past the worker's or the token's bound (the message says which)."""


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


def _node_command_limiter() -> anyio.CapacityLimiter:
    global _node_commands
    if _node_commands is None:
        _node_commands = anyio.CapacityLimiter(NODE_EXEC_THREADS)
    return _node_commands


@contextmanager
def node_command_slot(token: str) -> Iterator[None]:
    """Hold one of the worker's node-command slots for ``token`` (a token's name) while the
    block runs, or raise ``NoSlotError`` at once when none is free. Called on the event loop."""
    total = sum(_running.values())
    if _running[token] >= NODE_EXEC_PER_TOKEN:
        raise NoSlotError(
            f"the token {token!r} already runs {_running[token]} node commands, the most one"
            " token may run at once on this server; try again when one of them has ended"
        )
    if total >= NODE_EXEC_THREADS:
        raise NoSlotError(
            f"this server already runs {total} node commands, the most it runs at once;"
            " try again when one of them has ended"
        )
    _running[token] += 1
    try:
        yield
    finally:
        _running[token] -= 1
        if not _running[token]:
            del _running[token]


async def run_node_command(call: Callable[[], T]) -> T:
    """``call()`` (a node command, which may wait for an hour) on a thread of its own pool:
    neither a request's thread nor a transfer's. Hold a ``node_command_slot`` around it."""
    return await anyio.to_thread.run_sync(call, limiter=_node_command_limiter())


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

"""Reading one file of a mount: ranged requests with read-ahead, no whole-file download.

A file is read in chunks (8 MiB); each chunk is one ranged request. While reads move forward
through the file, the window of chunks fetched ahead in parallel doubles (1, 2, 4 ... up to
``max_ahead``), so a sequential reader keeps several requests in flight; a jump elsewhere
starts again from a window of one, so random access fetches little it does not use.

Reads may come from several FUSE threads at once (the kernel reads ahead with parallel
requests, slightly out of order): a chunk already fetched or on its way counts as forward,
and a reader whose chunk was dropped meanwhile fetches it itself instead of failing.

The bytes are copied once on their way through: received into a chunk's buffer, then copied
from there straight into the kernel's buffer (:meth:`ReadAhead.read_into`); a file of one
chunk read whole by one request (a small file, nearly always) is received straight into the
kernel's buffer, with no chunk at all. A chunk's buffer
goes back to the mount's :class:`~openbai.mounts.buffers.BufferPool` once the window has moved
past it, or the file is closed, and no read is copying from it (``pins``), for a later chunk of
this file or another: fresh memory costs the kernel a page fault and a zeroed page per 4 KiB
(about a tenth of a big read's CPU, a sixth of reading many small files).
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Executor, Future
from dataclasses import dataclass

from openbai.mounts.buffers import Buffer, BufferPool, memory_view

_MiB = 1024 * 1024

#: fetch_into(offset, into) -> bytes received: a ranged read of the file into ``into``
FetchInto = Callable[[int, memoryview], int]


@dataclass(eq=False)
class _Chunk:
    buffer: Buffer
    length: int  # bytes received (fewer than the buffer at the file's end)
    pins: int = 0  # reads copying from it now
    retired: bool = False  # out of the window, or closed: its buffer goes back once unpinned
    returned: bool = False  # its buffer went back to the pool


class ReadAhead:
    def __init__(
        self,
        fetch_into: FetchInto,
        size: int,
        pool: Executor,
        *,
        chunk_size: int = 8 * _MiB,
        max_ahead: int = 8,
        buffers: BufferPool | None = None,
    ):
        self._fetch = fetch_into
        self.size = size
        self._pool = pool
        self._chunk = chunk_size
        self._max_ahead = max_ahead
        self._chunks: dict[int, Future[_Chunk]] = {}
        self._buffers = buffers or BufferPool(keep_bytes=(max_ahead + 4) * chunk_size)
        self._ahead = 1
        self._last = -2
        self._closed = False
        self._lock = threading.Lock()

    def read(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset`` (fewer at the end)."""
        out = ctypes.create_string_buffer(max(min(length, self.size - offset), 0))
        got = self.read_into(offset, len(out), ctypes.addressof(out))
        return out.raw[:got]

    def read_into(self, offset: int, length: int, dest: int) -> int:
        """Copy up to ``length`` bytes from ``offset`` to the memory at address ``dest``;
        how many (fewer at the end)."""
        end = min(offset + length, self.size)
        if offset == 0 and 0 < end == self.size <= self._chunk and self._untouched():
            # a small file read whole by one request, as nearly always: received straight
            # into the kernel's buffer, with no chunk between (a copy less, no thread hop)
            view = memory_view(dest, end, writable=True)
            try:
                return self._fetch(0, view)
            finally:
                with contextlib.suppress(BufferError):  # still exported by a traceback's frame
                    view.release()
        done = 0
        while offset < end:
            index = offset // self._chunk
            chunk, private = self._pinned(index)
            try:
                start = offset - index * self._chunk
                count = min(end - offset, chunk.length - start)
                if count <= 0:  # the file is shorter than it was when opened
                    break
                ctypes.memmove(dest + done, chunk.buffer.address + start, count)
            finally:
                self._unpin(chunk, private)
            done += count
            offset += count
        return done

    def _untouched(self) -> bool:
        with self._lock:
            return not self._chunks

    def _pinned(self, index: int) -> tuple[_Chunk, bool]:
        """The chunk ``index``, pinned; True if it is this read's own (fetched here)."""
        future, mine = self._chunk_at(index)
        if mine:  # nobody fetches it yet: here, not through the pool (two thread hops less)
            self._run(future, index)
        try:
            chunk: _Chunk | None = future.result()
        except CancelledError:  # dropped by a reader further on
            chunk = None
        if chunk is not None:
            with self._lock:
                if not chunk.retired:
                    chunk.pins += 1
                    return chunk, False
        return self._load(index), True  # its buffer may hold another chunk by now

    def _unpin(self, chunk: _Chunk, private: bool) -> None:
        with self._lock:
            chunk.pins -= 0 if private else 1
            if private or chunk.retired and not chunk.pins:
                self._give_back(chunk)

    def _chunk_at(self, index: int) -> tuple[Future[_Chunk], bool]:
        """The chunk's future, and whether the caller is to fetch it (nobody else does)."""
        dropped = []
        with self._lock:
            # The kernel reads ahead with several requests at once, so they may come a little
            # out of order: a chunk already fetched (or on its way) still counts as forward.
            if index in self._chunks or index in (self._last, self._last + 1):
                if index > self._last:
                    self._ahead = min(self._ahead * 2, self._max_ahead)
                    self._last = index
            else:
                self._ahead, self._last = 1, index
            last_chunk = max(self.size - 1, 0) // self._chunk
            mine = index not in self._chunks
            if mine:  # the window starts at it (``_last``): nothing drops it from here on
                self._chunks[index] = Future()
                self._chunks[index].set_running_or_notify_cancel()
            for wanted in range(self._last, min(self._last + self._ahead - 1, last_chunk) + 1):
                if wanted not in self._chunks:
                    self._chunks[wanted] = self._pool.submit(self._load, wanted)
            if index not in self._chunks:
                self._chunks[index] = self._pool.submit(self._load, index)
            low, high = self._last - 2, self._last + self._max_ahead
            for old in [k for k in self._chunks if not low <= k <= high]:
                dropped.append(self._chunks.pop(old))
            future = self._chunks.get(index) or self._pool.submit(self._load, index)
        for old_future in dropped:
            if not old_future.cancel():  # being fetched, or fetched: retire it when done
                old_future.add_done_callback(self._retire)
        return future, mine

    def _run(self, future: Future[_Chunk], index: int) -> None:
        try:
            future.set_result(self._load(index))
        except BaseException as e:
            future.set_exception(e)

    def _retire(self, future: Future[_Chunk]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        chunk = future.result()
        with self._lock:
            chunk.retired = True
            if not chunk.pins:
                self._give_back(chunk)

    def _load(self, index: int) -> _Chunk:
        start = index * self._chunk
        length = max(min(self._chunk, self.size - start), 0)
        buffer = self._buffers.take(length)
        try:
            got = self._fetch(start, memoryview(buffer.data)[:length])
        except BaseException:
            self._buffers.give(buffer)
            raise
        return _Chunk(buffer, got)

    def _give_back(self, chunk: _Chunk) -> None:
        """Return a chunk's buffer to the pool, once (called holding the lock)."""
        if not chunk.returned:
            chunk.returned = True
            self._buffers.give(chunk.buffer)

    def close(self) -> None:
        """Drop every chunk: those fetched give their buffers back (those still being
        fetched, once they are)."""
        with self._lock:
            self._closed = True
            futures = list(self._chunks.values())
            self._chunks.clear()
        for future in futures:
            if not future.cancel():
                future.add_done_callback(self._retire)

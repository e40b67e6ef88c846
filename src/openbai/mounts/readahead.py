"""Reading one file of a mount: ranged requests with read-ahead, no whole-file download.

A file is read in chunks (8 MiB); each chunk is one ranged request. While reads move forward
through the file, the window of chunks fetched ahead in parallel doubles (1, 2, 4 ... up to
``max_ahead``), so a sequential reader keeps several requests in flight; a jump elsewhere
starts again from a window of one, so random access fetches little it does not use.

Reads may come from several FUSE threads at once (the kernel reads ahead with parallel
requests, slightly out of order): a chunk already fetched or on its way counts as forward,
and a reader whose chunk was dropped meanwhile fetches it itself instead of failing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Executor, Future

_MiB = 1024 * 1024

#: fetch(offset, length) -> bytes, a ranged read of the file
Fetch = Callable[[int, int], bytes]


class ReadAhead:
    def __init__(
        self,
        fetch: Fetch,
        size: int,
        pool: Executor,
        *,
        chunk_size: int = 8 * _MiB,
        max_ahead: int = 8,
    ):
        self._fetch = fetch
        self.size = size
        self._pool = pool
        self._chunk = chunk_size
        self._max_ahead = max_ahead
        self._chunks: dict[int, Future[bytes]] = {}
        self._ahead = 1
        self._last = -2
        self._lock = threading.Lock()

    def read(self, offset: int, length: int) -> bytes:
        parts = []
        end = min(offset + length, self.size)
        while offset < end:
            index = offset // self._chunk
            try:
                data = self._chunk_at(index).result()
            except CancelledError:  # dropped by a reader further on: fetch it here
                data = self._load(index)
            piece = data[offset - index * self._chunk : end - index * self._chunk]
            if not piece:  # the file is shorter than it was when opened
                break
            parts.append(piece)
            offset += len(piece)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _chunk_at(self, index: int) -> Future[bytes]:
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
            for wanted in range(self._last, min(self._last + self._ahead - 1, last_chunk) + 1):
                if wanted not in self._chunks:
                    self._chunks[wanted] = self._pool.submit(self._load, wanted)
            if index not in self._chunks:
                self._chunks[index] = self._pool.submit(self._load, index)
            low, high = self._last - 2, self._last + self._max_ahead
            for old in [k for k in self._chunks if not low <= k <= high]:
                self._chunks.pop(old).cancel()  # a chunk being fetched is not cancelled
            return self._chunks.get(index) or self._pool.submit(self._load, index)

    def _load(self, index: int) -> bytes:
        start = index * self._chunk
        return self._fetch(start, min(self._chunk, self.size - start))

    def close(self) -> None:
        with self._lock:
            for future in self._chunks.values():
                future.cancel()
            self._chunks.clear()

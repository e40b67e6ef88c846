"""ReadAhead: ranged requests, a window that grows while reading forward, no whole file."""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from openbai.mounts.buffers import BufferPool
from openbai.mounts.readahead import ReadAhead

KiB = 1024


class Store:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.requests: list[tuple[int, int]] = []
        self.buffers: list[object] = []  # what each range was received into
        self._lock = threading.Lock()

    def fetch(self, offset: int, into: memoryview) -> int:
        with self._lock:
            self.requests.append((offset, len(into)))
            self.buffers.append(into.obj)
        data = self.data[offset : offset + len(into)]
        into[: len(data)] = data
        return len(data)


def test_first_byte_needs_one_small_range_not_the_file() -> None:
    store = Store(os.urandom(1024 * KiB))
    with ThreadPoolExecutor(4) as pool:
        reader = ReadAhead(store.fetch, len(store.data), pool, chunk_size=64 * KiB, max_ahead=4)
        assert reader.read(0, 4 * KiB) == store.data[: 4 * KiB]
    assert store.requests == [(0, 64 * KiB)]


def test_sequential_reads_fetch_ahead_in_parallel_and_return_every_byte() -> None:
    store = Store(os.urandom(1024 * KiB + 123))
    with ThreadPoolExecutor(4) as pool:
        reader = ReadAhead(store.fetch, len(store.data), pool, chunk_size=64 * KiB, max_ahead=4)
        got = b"".join(reader.read(o, 16 * KiB) for o in range(0, len(store.data), 16 * KiB))
        assert got == store.data
    offsets = sorted(o for o, _ in store.requests)
    assert offsets == list(range(0, len(store.data), 64 * KiB))  # each chunk once
    assert max(n for _, n in store.requests) == 64 * KiB


def test_random_access_fetches_only_what_it_reads() -> None:
    store = Store(os.urandom(4096 * KiB))
    with ThreadPoolExecutor(4) as pool:
        reader = ReadAhead(store.fetch, len(store.data), pool, chunk_size=64 * KiB, max_ahead=8)
        for offset in (3000 * KiB, 100 * KiB, 2000 * KiB):
            assert reader.read(offset, 100) == store.data[offset : offset + 100]
    assert len(store.requests) == 3


def test_reads_spanning_chunks_and_past_the_end() -> None:
    store = Store(bytes(range(256)) * 1000)
    with ThreadPoolExecutor(2) as pool:
        reader = ReadAhead(store.fetch, len(store.data), pool, chunk_size=1000, max_ahead=2)
        assert reader.read(990, 30) == store.data[990:1020]
        assert reader.read(len(store.data) - 5, 100) == store.data[-5:]
        assert reader.read(len(store.data) + 10, 100) == b""


def test_concurrent_out_of_order_readers_always_get_their_bytes() -> None:
    """The kernel reads ahead with several requests at once; none may fail or get wrong bytes
    when another one moves the window (a dropped chunk is fetched again)."""
    store = Store(os.urandom(2048 * KiB))
    with ThreadPoolExecutor(4) as pool:
        reader = ReadAhead(store.fetch, len(store.data), pool, chunk_size=16 * KiB, max_ahead=2)
        offsets = [o for o in range(0, len(store.data), 4 * KiB)]
        order = offsets[::-1][::3] + offsets  # far jumps mixed with a forward scan

        def read(offset: int) -> bool:
            return reader.read(offset, 4 * KiB) == store.data[offset : offset + 4 * KiB]

        with ThreadPoolExecutor(8) as readers:
            assert all(readers.map(read, order))


def test_a_long_read_reuses_a_window_of_buffers() -> None:
    """Memory stays at the window however long the file: buffers of chunks the reader has
    passed are received into again (fresh memory costs the kernel a zeroed page per 4 KiB)."""
    store = Store(os.urandom(64 * 64 * KiB))
    with ThreadPoolExecutor(4) as pool:
        reader = ReadAhead(store.fetch, len(store.data), pool, chunk_size=64 * KiB, max_ahead=4)
        got = b"".join(reader.read(o, 32 * KiB) for o in range(0, len(store.data), 32 * KiB))
        assert got == store.data
    assert len(store.requests) == 64
    assert len({id(b) for b in store.buffers}) <= 4 + 4


def test_a_small_file_read_whole_is_received_straight_into_the_readers_memory() -> None:
    """One request for the whole of a one-chunk file (how the kernel reads a small file) is
    fetched into the request's own memory: no chunk buffer, no copy."""
    store = Store(os.urandom(40 * KiB))
    received_at: list[int] = []

    def fetch(offset: int, into: memoryview) -> int:
        received_at.append(ctypes.addressof(ctypes.c_char.from_buffer(into)))
        return store.fetch(offset, into)

    buffers = BufferPool(keep_bytes=1024 * KiB)
    dest = ctypes.create_string_buffer(64 * KiB)
    with ThreadPoolExecutor(2) as pool:
        reader = ReadAhead(fetch, len(store.data), pool, chunk_size=64 * KiB, buffers=buffers)
        assert reader.read_into(0, 64 * KiB, ctypes.addressof(dest)) == 40 * KiB
        assert dest.raw[: 40 * KiB] == store.data
        assert received_at == [ctypes.addressof(dest)]
        # a part of it goes through a chunk, as before
        assert reader.read(1000, 100) == store.data[1000:1100]
        reader.close()
    assert store.requests == [(0, 40 * KiB), (0, 40 * KiB)]
    assert buffers.idle_bytes == 64 * KiB  # only the chunk's buffer was the pool's


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not before the deadline"
        time.sleep(0.01)


def test_files_read_one_after_another_are_received_into_the_same_buffer() -> None:
    """A mount reading many small files takes each one's buffer from those the files before
    it gave back when they were closed, instead of fresh memory for every file."""
    pool_of_buffers = BufferPool(keep_bytes=1024 * KiB)
    files = [Store(os.urandom(300 * KiB + n)) for n in range(5)]
    with ThreadPoolExecutor(2) as pool:
        for store in files:
            reader = ReadAhead(
                store.fetch, len(store.data), pool, chunk_size=1024 * KiB, buffers=pool_of_buffers
            )
            head = reader.read(0, 100 * KiB)  # in two reads: through a chunk
            assert head + reader.read(100 * KiB, 1024 * KiB) == store.data
            reader.close()
    received_into = {id(b) for store in files for b in store.buffers}
    assert len(received_into) == 1
    assert pool_of_buffers.idle_bytes == 512 * KiB  # the one buffer, back in the pool


def test_a_file_closed_while_its_chunk_is_fetched_gives_the_buffer_back_once_it_is() -> None:
    entered, release = threading.Event(), threading.Event()
    store = Store(os.urandom(256 * KiB))

    def fetch(offset: int, into: memoryview) -> int:
        entered.set()
        release.wait(10)
        return store.fetch(offset, into)

    buffers = BufferPool(keep_bytes=4096 * KiB)
    with ThreadPoolExecutor(4) as pool:
        reader = ReadAhead(fetch, len(store.data), pool, chunk_size=64 * KiB, buffers=buffers)
        first = pool.submit(reader.read, 0, 4 * KiB)
        assert entered.wait(10)
        reader.close()  # chunk 0 is on its way: its buffer cannot go back yet
        assert buffers.idle_bytes == 0
        release.set()
        assert first.result(10) == store.data[: 4 * KiB]
    assert buffers.idle_bytes == 64 * KiB
    assert buffers.take(64 * KiB).data is store.buffers[0]

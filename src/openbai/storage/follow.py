"""Following a growing file (a job's stdout) through any storage backend, like ``tail -f``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from openbai.errors import NotFoundError
from openbai.storage.base import StorageBackend

#: most bytes read (and yielded) at once
CHUNK_SIZE = 4 * 1024 * 1024


def follow(
    backend: StorageBackend,
    volume: str,
    path: str,
    *,
    offset: int = 0,
    is_finished: Callable[[], bool],
    poll_interval: float = 0.05,
) -> Iterator[bytes]:
    """Yield the bytes of ``path`` from ``offset`` on, as they are written.

    Waits for the file to appear. Stops only once ``is_finished()`` returned True *and* a
    read made after that call found no new bytes, so the tail written just before the writer
    finished is never lost. When the file shrinks below the position already read (it was
    truncated or replaced), following starts again from its beginning; an ``offset`` past
    the file's end waits for the file to reach it (a resumed stream is never sent from its
    start again). Polls every
    ``poll_interval`` seconds while nothing is new; reads without pausing while data flows.
    """
    position = offset
    reached = False  # the file was once as long as ``position``
    while True:
        finished = is_finished()
        data = _read_new(backend, volume, path, position)
        if data is None and reached:  # truncated: start over
            position = 0
            continue
        reached = reached or data is not None
        if data:
            position += len(data)
            yield data
            continue
        if finished:
            return
        time.sleep(poll_interval)


def _read_new(backend: StorageBackend, volume: str, path: str, position: int) -> bytes | None:
    """New bytes past ``position`` (b"" if none or no file yet); None if the file shrank.

    The file is opened once per read: its size and bytes come from the same file (a job
    replacing it in between cannot make them disagree, nor lead the read elsewhere)."""
    try:
        with backend.open_file(volume, path) as reader:
            size = reader.info.size
            if size < position:
                return None
            if size == position or reader.info.is_dir:
                return b""
            return reader.read(position, min(size - position, CHUNK_SIZE))
    except NotFoundError:
        return b""

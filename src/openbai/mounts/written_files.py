"""Files written through a mount, from their first write until every byte is stored.

- Writes go to the backend's :class:`FileWriter`. A file is flushed (made visible and durable
  in storage) when closed and on fsync. Every ``commit_interval`` seconds (:meth:`commit_all`,
  called by the daemon) a file still being written is published (made visible: a flush would
  have the server write it to its disk meanwhile, and the job's writes wait; README, NFS), and
  one left quiet since the round before is flushed.
- A file whose bytes could not be stored stays listed and is retried; :meth:`finish` makes a
  last attempt for everything and returns what could not be saved.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from openbai.errors import OpenBaiError
from openbai.mounts.directory_cache import DirectoryCache
from openbai.storage.base import FileWriter, StorageBackend

log = logging.getLogger("openbai.mount")


@dataclass(eq=False)
class WrittenFile:
    """A file written through this mount, until everything written is stored."""

    key: str
    writer: FileWriter | None
    size: int
    mtime_ns: int = field(default_factory=time.time_ns)
    refs: int = 0
    dirty: bool = False
    unlinked: bool = False
    error: str | None = None
    #: (monotonic) when it was last written or truncated
    written_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


class WrittenFiles:
    def __init__(
        self,
        backend: StorageBackend,
        volume: str,
        path: Callable[[str], str],
        names: DirectoryCache,
    ):
        self._backend = backend
        self._volume = volume
        self._path = path  # the volume path of a mount key
        self._names = names
        self._lock = threading.RLock()
        self._files: dict[str, WrittenFile] = {}
        self._last_round = 0.0  # (monotonic) when commit_all last began

    # -- the table -------------------------------------------------------------------------
    def get(self, key: str) -> WrittenFile | None:
        return self._files.get(key)

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._files)

    def under(self, prefix: str) -> list[WrittenFile]:
        with self._lock:
            return [f for k, f in self._files.items() if k.startswith(prefix)]

    def is_unlinked(self, key: str) -> bool:
        file = self._files.get(key)
        return file is not None and file.unlinked

    def acquire(self, file: WrittenFile) -> None:
        """One more handle is open on ``file``."""
        with self._lock:
            file.refs += 1

    def unlink(self, key: str) -> WrittenFile | None:
        """Forget the file at ``key`` (deleted): it is never stored again."""
        with self._lock:
            file = self._files.pop(key, None)
            if file is not None:
                file.unlinked = True
            return file

    def moved(self, file: WrittenFile, dst: str) -> None:
        """``file`` (already stored) was renamed to ``dst``; its writer is opened again at
        the new path on the next write."""
        with self._lock:
            if self._files.get(file.key) is not file:
                return
            del self._files[file.key]
            file.key = dst
            if file.writer is not None:
                file.writer.close()
                file.writer = None
            if file.refs:
                self._files[dst] = file

    # -- writing ---------------------------------------------------------------------------
    def open(self, key: str, *, truncate: bool) -> WrittenFile:
        with self._lock:
            file = self._files.get(key)
            if file is None:
                size = 0
                if not truncate:
                    info = self._names.lookup(key)
                    size = info.size if info is not None else 0
                writer = self._backend.open_writer(self._volume, self._path(key), truncate=truncate)
                file = WrittenFile(key, writer, size, dirty=truncate)
                self._files[key] = file
            elif truncate:
                self.writer(file).truncate(0)
                file.size, file.dirty = 0, True
            return file

    def writer(self, file: WrittenFile) -> FileWriter:
        if file.writer is None:
            file.writer = self._backend.open_writer(self._volume, self._path(file.key))
        return file.writer

    def write(self, file: WrittenFile, offset: int, data: bytes | memoryview) -> None:
        with file.lock:
            self.writer(file).write(offset, data)
            file.size = max(file.size, offset + len(data))
            file.mtime_ns = time.time_ns()
            file.dirty, file.written_at = True, time.monotonic()

    def truncate(self, file: WrittenFile, length: int) -> None:
        with file.lock:
            self.writer(file).truncate(length)
            file.size, file.dirty, file.mtime_ns = length, True, time.time_ns()
            file.written_at = time.monotonic()

    # -- making writes durable -------------------------------------------------------------
    def flush(self, file: WrittenFile) -> None:
        with file.lock:
            was_dirty, file.dirty = file.dirty, False
            writer = file.writer
        if writer is None or file.unlinked:
            return
        self._store(file, writer.flush, was_dirty=was_dirty)
        self._names.stored(file.key, file.size, file.mtime_ns)

    def publish(self, file: WrittenFile) -> None:
        """Make what was written to ``file`` visible in storage; it stays dirty, for a flush."""
        writer = file.writer
        if writer is None or file.unlinked:
            return
        self._store(file, writer.publish)

    @staticmethod
    def _store(file: WrittenFile, call: Callable[[], None], *, was_dirty: bool = False) -> None:
        """One call storing ``file``; its failure is kept on the file (retried, reported)."""
        try:
            call()
        except OpenBaiError as e:
            file.dirty = file.dirty or was_dirty
            file.error = e.message
            log.warning("storing %s failed (will retry): %s", file.key, e.message)
            raise
        file.error = None

    def release(self, file: WrittenFile, *, extra: int) -> None:
        """Drop ``extra`` references; the last one closes the writer (kept on failure)."""
        with self._lock:
            file.refs -= extra
            if file.refs > 0:
                return
        if file.unlinked:
            if file.writer is not None:
                file.writer.discard()
            return
        try:
            self.flush(file)
        except OpenBaiError:
            return  # stays listed; commit_all retries it, finish reports it
        with self._lock:  # stored; close it unless it was opened again meanwhile
            if file.refs > 0:
                return
            if self._files.get(file.key) is file:
                del self._files[file.key]
            writer, file.writer = file.writer, None
        if writer is not None:
            writer.close()  # nothing left to flush: releases the writer's resources
        self._names.stored(file.key, file.size, file.mtime_ns)

    def commit_all(self, *, durable: bool = False) -> None:
        """Flush every file written since its last flush, but publish only those open and
        written since the round before (all are flushed when ``durable``); retry closed ones
        that failed."""
        with self._lock:
            files = list(self._files.values())
            since, self._last_round = self._last_round, time.monotonic()
        for file in files:
            try:
                if not durable and file.refs > 0 and file.written_at >= since:
                    self.publish(file)
                elif file.dirty or file.error is not None:
                    self.flush(file)
                if file.refs <= 0:
                    self.release(file, extra=0)
            except OpenBaiError:
                pass

    def errors(self) -> list[str]:
        """The files whose last flush failed, with why."""
        with self._lock:
            return [f"{self._path(f.key)}: {f.error}" for f in self._files.values() if f.error]

    def finish(self, deadline: float) -> list[str]:
        """Store everything still pending, retrying until ``deadline`` (monotonic); what could
        not be. Returns by the deadline even while a store call hangs or retries (each may
        take half a minute): what is still in the table then was not confirmed stored."""
        result: list[str] = []
        done = threading.Event()

        def attempt() -> None:
            result.extend(self._finish(deadline))
            done.set()

        threading.Thread(target=attempt, name="openbai-finish", daemon=True).start()
        if done.wait(max(0.0, deadline - time.monotonic()) + 0.5):
            return result
        with self._lock:
            left = [f for f in self._files.values() if not f.unlinked]
        return [
            f"{self._path(f.key)}: {f.error or 'not stored'} (the flush timeout ran out)"
            for f in left
        ]

    def _finish(self, deadline: float) -> list[str]:
        while True:
            self.commit_all(durable=True)
            with self._lock:
                failed = [f for f in self._files.values() if f.error is not None or f.dirty]
                for file in [f for f in self._files.values() if f not in failed]:
                    self.release(file, extra=file.refs)
                    failed += [file] if file.error else []
            if not failed or time.monotonic() > deadline:
                return [f"{self._path(f.key)}: {f.error or 'not stored'}" for f in failed]
            time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))

"""The FUSE filesystem of one volume, over any StorageBackend that ``supports_writer``.

Runs inside the mount's own process (``fuse_daemon.py``), on mfusepy's threads.

- Attributes and directory listings are cached for ``listing_ttl`` seconds. A lookup lists
  its directory (paged) and caches the listing, so opening 2,000 files of a directory costs
  one listing, not 2,000 HEAD requests; directories of more than LOOKUP_LISTING_MAX entries
  are looked up one entry at a time instead.
  Anything this mount changes drops the cached entries it touches at once.
- Reads go through :class:`ReadAhead` (ranged requests, parallel read-ahead). A file open for
  writing in this mount is read back through its writer, so a reader sees every written byte.
- Writes go to the backend's :class:`FileWriter`. Files are flushed (made visible in storage)
  when closed, on fsync, and every ``commit_interval`` seconds while open (:meth:`commit_all`).
  A file whose bytes could not be stored stays listed and is retried; :meth:`finish` makes a
  last attempt for everything and returns what could not be saved.
- ``rename`` flushes the source first; a directory is renamed file by file.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import posixpath
import stat
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

import mfusepy

from openbai.errors import (
    ConflictError,
    NotFoundError,
    OpenBaiError,
    PermissionDeniedError,
    SpecError,
)
from openbai.mounts.readahead import ReadAhead
from openbai.mounts.settings import MountSettings
from openbai.storage.base import FileInfo, FileWriter, StorageBackend

log = logging.getLogger("openbai.mount")

P = ParamSpec("P")
R = TypeVar("R")

#: a lookup lists its directory (and caches the listing) when it has at most this many entries
LOOKUP_LISTING_MAX = 10_000

_ERRNO: list[tuple[type[OpenBaiError], int]] = [
    (NotFoundError, errno.ENOENT),
    (PermissionDeniedError, errno.EACCES),
    (ConflictError, errno.EEXIST),
    (SpecError, errno.EINVAL),
]


def _fuse_errors(method: Callable[P, R]) -> Callable[P, R]:
    """Turn openbai errors into the errno the kernel hands to the calling program."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except OpenBaiError as e:
            code = next((c for kind, c in _ERRNO if isinstance(e, kind)), errno.EIO)
            if code == errno.EIO:
                log.error("%s%s failed: %s", method.__name__, args[1:2], e.message)
            raise mfusepy.FuseOSError(code) from e

    return wrapper


@dataclass(eq=False)
class _OpenFile:
    """A file written through this mount, until everything written is stored."""

    key: str
    writer: FileWriter | None
    size: int
    mtime_ns: int = field(default_factory=time.time_ns)
    refs: int = 0
    dirty: bool = False
    unlinked: bool = False
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(eq=False)
class _Handle:
    key: str
    file: _OpenFile | None = None
    reader: ReadAhead | None = None
    #: the process that opened it: only its close publishes the file at once
    pid: int = field(default_factory=lambda: _caller_pid())


def _caller_pid() -> int:
    try:
        return int(mfusepy.fuse_get_context()[2])
    except (OSError, ValueError, AttributeError):
        return 0


class VolumeFS(mfusepy.Operations):  # type: ignore[misc]
    use_ns = True
    flag_nopath = True  # operations on open files get the handle, not a path
    flag_nullpath_ok = True

    def __init__(
        self,
        backend: StorageBackend,
        volume: str,
        subpath: str = "",
        settings: MountSettings | None = None,
    ):
        self.backend = backend
        self.volume = volume
        self.subpath = subpath.strip("/")
        self.settings = settings or MountSettings()
        self.on_mounted: Callable[[], None] = lambda: None
        self._lock = threading.RLock()
        self._infos: dict[str, tuple[float, FileInfo | None]] = {}
        self._listings: dict[str, tuple[float, dict[str, FileInfo]]] = {}
        self._files: dict[str, _OpenFile] = {}
        self._handles: dict[int, _Handle] = {}
        self._dirs: set[str] = set()
        self._too_large: dict[str, float] = {}
        self._next_fh = 1
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="openbai-read")
        self._uid, self._gid = os.getuid(), os.getgid()

    # -- paths and caches ----------------------------------------------------------------
    def _path(self, key: str) -> str:
        """The path inside the volume of the mount's ``key`` (``a/b``)."""
        return "/".join(p for p in (self.subpath, key) if p)

    def _forget(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._infos.pop(key, None)
                self._listings.pop(key, None)
                self._listings.pop(posixpath.dirname(key), None)

    def _lookup(self, key: str) -> FileInfo | None:
        now = time.monotonic()
        with self._lock:
            cached = self._infos.get(key)
            if cached is not None and cached[0] > now:
                return cached[1]
            listing = self._listings.get(posixpath.dirname(key))
            if listing is not None and listing[0] > now:
                return listing[1].get(posixpath.basename(key))
        entries = self._try_listing(posixpath.dirname(key))
        if entries is not None:  # one paged listing answers every lookup in the directory
            return entries.get(posixpath.basename(key))
        try:
            info: FileInfo | None = self.backend.stat(self.volume, self._path(key))
        except NotFoundError:
            info = None
        with self._lock:
            self._infos[key] = (now + self.settings.listing_ttl, info)
        return info

    def _try_listing(self, key: str) -> dict[str, FileInfo] | None:
        """The directory's listing if it has at most LOOKUP_LISTING_MAX entries, else None."""
        now = time.monotonic()
        with self._lock:
            if self._too_large.get(key, 0.0) > now:
                return None
        entries: dict[str, FileInfo] = {}
        try:
            for info in self.backend.list_dir(self.volume, self._path(key)):
                entries[info.name] = info
                if len(entries) > LOOKUP_LISTING_MAX:
                    with self._lock:
                        self._too_large[key] = now + self.settings.listing_ttl
                    return None
        except NotFoundError:
            if key and key not in self._dirs:
                return {}
            entries = {}
        with self._lock:
            self._listings[key] = (now + self.settings.listing_ttl, entries)
        return entries

    def _listing(self, key: str) -> dict[str, FileInfo]:
        now = time.monotonic()
        with self._lock:
            cached = self._listings.get(key)
            if cached is not None and cached[0] > now:
                return cached[1]
        try:
            entries = {
                info.name: info for info in self.backend.list_dir(self.volume, self._path(key))
            }
        except NotFoundError:
            if key and key not in self._dirs:
                raise
            entries = {}
        with self._lock:
            self._listings[key] = (now + self.settings.listing_ttl, entries)
        return entries

    def _attrs(self, is_dir: bool, size: int = 0, mtime_ns: int = 0) -> dict[str, Any]:
        mode = (stat.S_IFDIR | 0o755) if is_dir else (stat.S_IFREG | 0o644)
        return {
            "st_mode": mode,
            "st_nlink": 2 if is_dir else 1,
            "st_size": size,
            "st_blocks": (size + 511) // 512,
            "st_mtime": mtime_ns,
            "st_ctime": mtime_ns,
            "st_atime": mtime_ns,
            "st_uid": self._uid,
            "st_gid": self._gid,
        }

    # -- metadata ------------------------------------------------------------------------
    def init(self, path: str) -> None:
        self.on_mounted()

    @_fuse_errors
    def getattr(self, path: str | None, fh: int | None = None) -> dict[str, Any]:
        handle = self._handles.get(fh) if fh is not None else None
        if handle is None and path is None:
            raise mfusepy.FuseOSError(errno.EBADF)
        key = handle.key if handle is not None else str(path).strip("/")
        if not key or key in self._dirs:
            return self._attrs(True)
        file = self._files.get(key)
        if file is not None:
            return self._attrs(False, file.size, file.mtime_ns)
        info = self._lookup(key)
        if info is None:
            raise mfusepy.FuseOSError(errno.ENOENT)
        mtime = int(info.modified.timestamp() * 1e9) if info.modified else 0
        return self._attrs(info.is_dir, info.size, mtime)

    def opendir(self, path: str) -> int:
        return self._new_handle(_Handle(path.strip("/")))

    def releasedir(self, path: str, fh: int) -> int:
        with self._lock:
            self._handles.pop(fh, None)
        return 0

    @_fuse_errors
    def readdir(self, path: str | None, fh: int) -> list[tuple[str, dict[str, Any], int] | str]:
        key = self._handles[fh].key if path is None else path.strip("/")
        entries: dict[str, bool] = {name: info.is_dir for name, info in self._listing(key).items()}
        with self._lock:
            for other in [*self._files, *self._dirs]:
                if posixpath.dirname(other) == key and other not in entries:
                    entries[posixpath.basename(other)] = other in self._dirs
            files = self._files
            entries = {n: d for n, d in entries.items() if not self._is_unlinked(files, key, n)}
        names: list[tuple[str, dict[str, Any], int] | str] = [".", ".."]
        for name, is_dir in sorted(entries.items()):
            names.append((name, {"st_mode": stat.S_IFDIR if is_dir else stat.S_IFREG}, 0))
        return names

    @staticmethod
    def _is_unlinked(files: dict[str, _OpenFile], key: str, name: str) -> bool:
        file = files.get(posixpath.join(key, name) if key else name)
        return file is not None and file.unlinked

    def statfs(self, path: str) -> dict[str, int]:
        blocks = 2**40 // 4096
        return {
            "f_bsize": 4096,
            "f_frsize": 4096,
            "f_blocks": blocks,
            "f_bfree": blocks,
            "f_bavail": blocks,
            "f_files": 2**32,
            "f_ffree": 2**32,
            "f_namemax": 1024,
        }

    def chmod(self, path: str, mode: int) -> int:
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        return 0

    @_fuse_errors
    def mkdir(self, path: str, mode: int) -> int:
        key = path.strip("/")
        self.backend.make_dir(self.volume, self._path(key))
        with self._lock:
            self._dirs.add(key)
        self._forget(key)
        return 0

    @_fuse_errors
    def rmdir(self, path: str) -> int:
        key = path.strip("/")
        if len(self.readdir(path, 0)) > 2:  # path given: no handle needed
            raise mfusepy.FuseOSError(errno.ENOTEMPTY)
        try:
            self.backend.delete(self.volume, self._path(key))
        except NotFoundError:
            if key not in self._dirs:
                raise
        with self._lock:
            self._dirs.discard(key)
        self._forget(key)
        return 0

    @_fuse_errors
    def unlink(self, path: str) -> int:
        key = path.strip("/")
        with self._lock:
            file = self._files.pop(key, None)
            if file is not None:
                file.unlinked = True
        try:
            self.backend.delete(self.volume, self._path(key))
        except NotFoundError:
            if file is None:
                raise
        self._forget(key)
        return 0

    @_fuse_errors
    def rename(self, old: str, new: str) -> int:
        src, dst = old.strip("/"), new.strip("/")
        info = self._lookup(src) if src not in self._files else None
        if info is not None and info.is_dir or src in self._dirs:
            self._rename_dir(src, dst)
        else:
            self._rename_file(src, dst)
        self._forget(src, dst)
        return 0

    def _rename_file(self, src: str, dst: str) -> None:
        with self._lock:
            file = self._files.get(src)
        if file is not None:
            self._flush(file)
        self.backend.rename(self.volume, self._path(src), self._path(dst))
        with self._lock:
            if file is not None and self._files.get(src) is file:
                del self._files[src]
                file.key = dst
                if file.writer is not None:  # reopened at the new path on the next write
                    file.writer.close()
                    file.writer = None
                if file.refs:
                    self._files[dst] = file
            for handle in self._handles.values():
                if handle.key == src:
                    handle.key = dst

    def _rename_dir(self, src: str, dst: str) -> None:
        for key in [k for k in self._files if k.startswith(src + "/")]:
            self._flush(self._files[key])
        base = self._path(src)
        for info in list(self.backend.list_dir(self.volume, base, recursive=True)):
            rest = info.path[len(base) :].lstrip("/")
            self._rename_file(f"{src}/{rest}", f"{dst}/{rest}")
        with self._lock:
            for key in [k for k in self._dirs if k == src or k.startswith(src + "/")]:
                self._dirs.discard(key)
                self._dirs.add(dst + key[len(src) :])
            self._listings.clear()
            self._infos.clear()

    # -- opening and closing -------------------------------------------------------------
    def _new_handle(self, handle: _Handle) -> int:
        with self._lock:
            fh = self._next_fh
            self._next_fh += 1
            self._handles[fh] = handle
            if handle.file is not None:
                handle.file.refs += 1
            return fh

    def _open_for_write(self, key: str, *, truncate: bool) -> _OpenFile:
        with self._lock:
            file = self._files.get(key)
            if file is None:
                size = 0
                if not truncate:
                    info = self._lookup(key)
                    size = info.size if info is not None else 0
                writer = self.backend.open_writer(self.volume, self._path(key), truncate=truncate)
                file = _OpenFile(key, writer, size, dirty=truncate)
                self._files[key] = file
            elif truncate:
                self._writer(file).truncate(0)
                file.size, file.dirty = 0, True
            return file

    def _writer(self, file: _OpenFile) -> FileWriter:
        if file.writer is None:
            file.writer = self.backend.open_writer(self.volume, self._path(file.key))
        return file.writer

    @_fuse_errors
    def create(self, path: str, mode: int, flags: int = 0) -> int:
        key = path.strip("/")
        file = self._open_for_write(key, truncate=True)
        self._forget(key)
        return self._new_handle(_Handle(key, file))

    @_fuse_errors
    def open(self, path: str, flags: int) -> int:
        key = path.strip("/")
        access = flags & os.O_ACCMODE
        if access != os.O_RDONLY or flags & os.O_TRUNC:
            written = self._open_for_write(key, truncate=bool(flags & os.O_TRUNC))
            return self._new_handle(_Handle(key, written))
        with self._lock:
            file = self._files.get(key)
        if file is not None:  # being written here: read it back through its writer
            return self._new_handle(_Handle(key, file))
        info = self._lookup(key)
        if info is None:
            raise mfusepy.FuseOSError(errno.ENOENT)
        if info.is_dir:
            raise mfusepy.FuseOSError(errno.EISDIR)
        volume_path = self._path(key)

        def fetch(offset: int, length: int) -> bytes:
            return self.backend.read(self.volume, volume_path, offset, length)

        reader = ReadAhead(
            fetch,
            info.size,
            self._pool,
            chunk_size=self.settings.read_chunk,
            max_ahead=self.settings.read_ahead,
        )
        return self._new_handle(_Handle(key, reader=reader))

    @_fuse_errors
    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        handle = self._handles[fh]
        if handle.reader is not None:
            return handle.reader.read(offset, size)
        file = handle.file
        assert file is not None
        writer = self._writer(file)
        if not writer.can_read:
            self._flush(file)
            return self.backend.read(self.volume, self._path(file.key), offset, size)
        return writer.read(offset, size)

    @_fuse_errors
    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        file = self._handles[fh].file
        if file is None:
            raise mfusepy.FuseOSError(errno.EBADF)
        with file.lock:
            self._writer(file).write(offset, data)
            file.size = max(file.size, offset + len(data))
            file.mtime_ns = time.time_ns()
            file.dirty = True
        return len(data)

    @_fuse_errors
    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        handle = self._handles.get(fh) if fh is not None else None
        key = handle.key if handle is not None else path.strip("/")
        file: _OpenFile | None = (
            self._open_for_write(key, truncate=False) if handle is None else handle.file
        )
        if file is None:
            raise mfusepy.FuseOSError(errno.EBADF)
        with file.lock:
            self._writer(file).truncate(length)
            file.size, file.dirty, file.mtime_ns = length, True, time.time_ns()
        if handle is None:
            self._flush(file)
            self._release_file(file, extra=0)
        return 0

    @_fuse_errors
    def flush(self, path: str, fh: int) -> int:
        """close(2): the opener's close publishes the file (errors reach it as EIO); a
        forked child closing its inherited copy does not wait (its last close will)."""
        handle = self._handles[fh]
        if handle.file is not None and handle.file.dirty and _caller_pid() == handle.pid:
            self._flush(handle.file)
        return 0

    @_fuse_errors
    def fsync(self, path: str, datasync: int, fh: int) -> int:
        file = self._handles[fh].file
        if file is not None and file.dirty:
            self._flush(file)
        return 0

    def release(self, path: str, fh: int) -> int:
        with self._lock:
            handle = self._handles.pop(fh)
        if handle.reader is not None:
            handle.reader.close()
        if handle.file is not None:
            self._release_file(handle.file, extra=1)
        return 0

    def _release_file(self, file: _OpenFile, *, extra: int) -> None:
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
            self._flush(file)
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
        self._forget(file.key)

    # -- making writes durable -----------------------------------------------------------
    def _flush(self, file: _OpenFile) -> None:
        with file.lock:
            was_dirty, file.dirty = file.dirty, False
            writer = file.writer
        if writer is None or file.unlinked:
            return
        try:
            writer.flush()
        except OpenBaiError as e:
            file.dirty = file.dirty or was_dirty
            file.error = e.message
            log.warning("storing %s failed (will retry): %s", file.key, e.message)
            raise
        file.error = None
        self._forget(file.key)

    def commit_all(self) -> None:
        """Flush every file written since its last flush; retry closed ones that failed."""
        with self._lock:
            files = list(self._files.values())
        for file in files:
            try:
                if file.dirty or file.error is not None:
                    self._flush(file)
                if file.refs <= 0:
                    self._release_file(file, extra=0)
            except OpenBaiError:
                pass

    def errors(self) -> list[str]:
        """The files whose last flush failed, with why."""
        with self._lock:
            return [f"{self._path(f.key)}: {f.error}" for f in self._files.values() if f.error]

    def finish(self, deadline: float) -> list[str]:
        """Store everything still pending, retrying until ``deadline``; what could not be."""
        while True:
            self.commit_all()
            with self._lock:
                failed = [f for f in self._files.values() if f.error is not None or f.dirty]
                for file in [f for f in self._files.values() if f not in failed]:
                    self._release_file(file, extra=file.refs)
                    failed += [file] if file.error else []
            if not failed or time.monotonic() > deadline:
                self._pool.shutdown(wait=False, cancel_futures=True)
                return [f"{self._path(f.key)}: {f.error or 'not stored'}" for f in failed]
            time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))

"""The FUSE filesystem of one volume, over any StorageBackend that ``supports_writer``.

Runs inside the mount's own process (``fuse_daemon.py``), on mfusepy's threads. It maps FUSE
operations onto its parts:

- names (attributes, listings, directories made here): :class:`DirectoryCache`;
- file handle numbers: :class:`HandleTable`;
- reads: :class:`ReadAhead` (ranged requests, parallel read-ahead). A file open for writing
  in this mount is read back through its writer, so a reader sees every written byte;
- writes, and making them durable: :class:`WrittenFiles`.

``rename`` flushes the source first; a directory is renamed file by file.
"""

from __future__ import annotations

import ctypes
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
from typing import Any, ParamSpec, TypeVar

import mfusepy

from openbai.errors import (
    ConflictError,
    NotFoundError,
    OpenBaiError,
    PermissionDeniedError,
    SpecError,
)
from openbai.mounts.buffers import BufferPool, memory_view
from openbai.mounts.directory_cache import DirectoryCache
from openbai.mounts.faults import Fault
from openbai.mounts.handles import Handle, HandleTable, caller_pid
from openbai.mounts.readahead import ReadAhead
from openbai.mounts.settings import MountSettings
from openbai.mounts.written_files import WrittenFile, WrittenFiles
from openbai.storage.base import StorageBackend

log = logging.getLogger("openbai.mount")

P = ParamSpec("P")
R = TypeVar("R")

_ERRNO: list[tuple[type[OpenBaiError], int]] = [
    (NotFoundError, errno.ENOENT),
    (PermissionDeniedError, errno.EACCES),
    (ConflictError, errno.EEXIST),
    (SpecError, errno.EINVAL),
]


def _fuse_errors(method: Callable[P, R]) -> Callable[P, R]:
    """Turn openbai errors into the errno the kernel hands to the calling program; a fault
    (``EIO`` for a store that failed, ``ENOSPC`` from a full cache disk...) is also recorded
    with its file, since the program may ignore it (see faults.py)."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except mfusepy.FuseOSError:  # an answer (ENOENT, EBADF...), not a fault
            raise
        except OpenBaiError as e:
            code = next((c for kind, c in _ERRNO if isinstance(e, kind)), errno.EIO)
            if code == errno.EIO:
                args[0]._fault(method.__name__, args, code, e.message)  # type: ignore[attr-defined]
            raise mfusepy.FuseOSError(code) from e
        except OSError as e:  # this machine's side: the cache directory's disk
            code = e.errno or errno.EIO
            args[0]._fault(method.__name__, args, code, e.strerror or str(e))  # type: ignore[attr-defined]
            raise mfusepy.FuseOSError(code) from e

    return wrapper


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
        #: where faults returned to the job go (the daemon's FaultLog)
        self.on_fault: Callable[[Fault], None] = lambda fault: None
        self._names = DirectoryCache(backend, volume, self._path, self.settings.listing_ttl)
        self._files = WrittenFiles(backend, volume, self._path, self._names)
        self._handles = HandleTable()
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="openbai-read")
        #: what files' chunks are received into, shared by the files read
        self._buffers = BufferPool(
            keep_bytes=(self.settings.read_ahead + 4) * self.settings.read_chunk
        )
        self._uid, self._gid = os.getuid(), os.getgid()

    def _path(self, key: str) -> str:
        """The path inside the volume of the mount's ``key`` (``a/b``)."""
        return "/".join(p for p in (self.subpath, key) if p)

    def _fault(self, operation: str, args: tuple[object, ...], code: int, message: str) -> None:
        """Record an error returned to the job, with the volume path of its file."""
        path = args[1] if len(args) > 1 else None
        if isinstance(path, str):
            key = path.strip("/")
        else:  # an operation on an open file: its handle is the last argument
            fh = args[-1]
            handle = self._handles.get(fh) if isinstance(fh, int) else None
            key = handle.key if handle is not None else "?"
        if operation == "open" and isinstance(args[2], int) and not args[2] & os.O_ACCMODE:
            operation = "read-only open"  # loses no output
        self.on_fault(Fault(time.time(), operation, self._path(key), code, message))

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
        handle = self._handles.get(fh)
        if handle is None and path is None:
            raise mfusepy.FuseOSError(errno.EBADF)
        key = handle.key if handle is not None else str(path).strip("/")
        if not key or self._names.is_made_dir(key):
            return self._attrs(True)
        file = self._files.get(key)
        if file is not None:
            return self._attrs(False, file.size, file.mtime_ns)
        info = self._names.lookup(key)
        if info is None:
            raise mfusepy.FuseOSError(errno.ENOENT)
        mtime = int(info.modified.timestamp() * 1e9) if info.modified else 0
        return self._attrs(info.is_dir, info.size, mtime)

    def opendir(self, path: str) -> int:
        return self._handles.add(Handle(path.strip("/")))

    def releasedir(self, path: str, fh: int) -> int:
        self._handles.pop(fh)
        return 0

    @_fuse_errors
    def readdir(self, path: str | None, fh: int) -> list[tuple[str, dict[str, Any], int] | str]:
        key = self._handles[fh].key if path is None else path.strip("/")
        listed = self._names.listing(key)
        entries: dict[str, bool] = {name: info.is_dir for name, info in listed.items()}
        made = self._names.made_dirs()
        for other in [*self._files.keys(), *made]:
            if posixpath.dirname(other) == key and other not in entries:
                entries[posixpath.basename(other)] = other in made
        entries = {
            name: is_dir
            for name, is_dir in entries.items()
            if not self._files.is_unlinked(posixpath.join(key, name) if key else name)
        }
        names: list[tuple[str, dict[str, Any], int] | str] = [".", ".."]
        for name, is_dir in sorted(entries.items()):
            names.append((name, {"st_mode": stat.S_IFDIR if is_dir else stat.S_IFREG}, 0))
        return names

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
        self._names.add_dir(key)
        self._names.forget(key)
        return 0

    @_fuse_errors
    def rmdir(self, path: str) -> int:
        key = path.strip("/")
        if len(self.readdir(path, 0)) > 2:  # path given: no handle needed
            raise mfusepy.FuseOSError(errno.ENOTEMPTY)
        try:
            self.backend.delete(self.volume, self._path(key))
        except NotFoundError:
            if not self._names.is_made_dir(key):
                raise
        self._names.remove_dir(key)
        self._names.forget(key)
        return 0

    @_fuse_errors
    def unlink(self, path: str) -> int:
        key = path.strip("/")
        file = self._files.unlink(key)
        try:
            self.backend.delete(self.volume, self._path(key))
        except NotFoundError:
            if file is None:
                raise
        self._names.forget(key)
        return 0

    @_fuse_errors
    def rename(self, old: str, new: str) -> int:
        src, dst = old.strip("/"), new.strip("/")
        info = self._names.lookup(src) if self._files.get(src) is None else None
        if info is not None and info.is_dir or self._names.is_made_dir(src):
            self._rename_dir(src, dst)
        else:
            self._rename_file(src, dst)
        self._names.forget(src, dst)
        return 0

    def _rename_file(self, src: str, dst: str) -> None:
        file = self._files.get(src)
        if file is not None:
            self._files.flush(file)
        self.backend.rename(self.volume, self._path(src), self._path(dst))
        if file is not None:
            self._files.moved(file, dst)
        self._handles.rename(src, dst)

    def _rename_dir(self, src: str, dst: str) -> None:
        for file in self._files.under(src + "/"):
            self._files.flush(file)
        base = self._path(src)
        for info in list(self.backend.list_dir(self.volume, base, recursive=True)):
            rest = info.path[len(base) :].lstrip("/")
            self._rename_file(f"{src}/{rest}", f"{dst}/{rest}")
        self._names.move_dirs(src, dst)

    # -- opening and closing -------------------------------------------------------------
    def _new_handle(self, handle: Handle) -> int:
        if handle.file is not None:
            self._files.acquire(handle.file)
        return self._handles.add(handle)

    @_fuse_errors
    def create(self, path: str, mode: int, flags: int = 0) -> int:
        key = path.strip("/")
        file = self._files.open(key, truncate=True)
        self._names.stored(key, 0, file.mtime_ns)
        return self._new_handle(Handle(key, file))

    @_fuse_errors
    def open(self, path: str, flags: int) -> int:
        key = path.strip("/")
        access = flags & os.O_ACCMODE
        if access != os.O_RDONLY or flags & os.O_TRUNC:
            written = self._files.open(key, truncate=bool(flags & os.O_TRUNC))
            return self._new_handle(Handle(key, written))
        file = self._files.get(key)
        if file is not None:  # being written here: read it back through its writer
            return self._new_handle(Handle(key, file))
        info = self._names.lookup(key)
        if info is None:
            raise mfusepy.FuseOSError(errno.ENOENT)
        if info.is_dir:
            raise mfusepy.FuseOSError(errno.EISDIR)
        reader = ReadAhead(
            functools.partial(self.backend.read_into, self.volume, self._path(key)),
            info.size,
            self._pool,
            chunk_size=self.settings.read_chunk,
            max_ahead=self.settings.read_ahead,
            buffers=self._buffers,
        )
        return self._new_handle(Handle(key, reader=reader, pid=0))

    def flushes(self, fh: int) -> bool:
        """Whether closing handle ``fh`` has anything to do: only a file written here has
        (a reader's close would cost a FUSE request that does nothing)."""
        handle = self._handles.get(fh)
        return handle is None or handle.file is not None

    @_fuse_errors
    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        handle = self._handles[fh]
        if handle.reader is not None:
            return handle.reader.read(offset, size)
        file = handle.file
        assert file is not None
        writer = self._files.writer(file)
        if not writer.can_read:
            self._files.flush(file)
            return self.backend.read(self.volume, self._path(file.key), offset, size)
        return writer.read(offset, size)

    @_fuse_errors
    def read_into(self, fh: int, size: int, offset: int, dest: int) -> int:
        """:meth:`read` into the kernel's buffer at address ``dest`` (see :class:`VolumeFUSE`)."""
        handle = self._handles[fh]
        if handle.reader is not None:
            return handle.reader.read_into(offset, size, dest)
        data = self.read("", size, offset, fh)
        ctypes.memmove(dest, data, len(data))
        return len(data)

    @_fuse_errors
    def write(self, path: str | None, data: bytes | memoryview, offset: int, fh: int) -> int:
        file = self._handles[fh].file
        if file is None:
            raise mfusepy.FuseOSError(errno.EBADF)
        self._files.write(file, offset, data)
        return len(data)

    @_fuse_errors
    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        handle = self._handles.get(fh)
        key = handle.key if handle is not None else path.strip("/")
        file: WrittenFile | None = (
            self._files.open(key, truncate=False) if handle is None else handle.file
        )
        if file is None:
            raise mfusepy.FuseOSError(errno.EBADF)
        self._files.truncate(file, length)
        if handle is None:
            self._files.flush(file)
            self._files.release(file, extra=0)
        return 0

    @_fuse_errors
    def flush(self, path: str, fh: int) -> int:
        """close(2): the opener's close publishes the file (errors reach it as EIO); a
        forked child closing its inherited copy does not wait (its last close will)."""
        handle = self._handles[fh]
        if handle.file is not None and handle.file.dirty and caller_pid() == handle.pid:
            self._files.flush(handle.file)
        return 0

    @_fuse_errors
    def fsync(self, path: str, datasync: int, fh: int) -> int:
        file = self._handles[fh].file
        if file is not None and file.dirty:
            self._files.flush(file)
        return 0

    def release(self, path: str, fh: int) -> int:
        handle = self._handles.pop(fh)
        if handle is None:
            return 0
        if handle.reader is not None:
            handle.reader.close()
        if handle.file is not None:
            self._files.release(handle.file, extra=1)
        return 0

    # -- making writes durable (called by the daemon) ------------------------------------
    def commit_all(self, *, durable: bool = False) -> None:
        """Publish what is being written, flush the rest (see ``WrittenFiles.commit_all``)."""
        self._files.commit_all(durable=durable)

    def errors(self) -> list[str]:
        """The files whose last flush failed, with why."""
        return self._files.errors()

    def finish(self, deadline: float) -> list[str]:
        """Store everything still pending, retrying until ``deadline``; what could not be."""
        failed = self._files.finish(deadline)
        self._pool.shutdown(wait=False, cancel_futures=True)
        return failed


class VolumeFUSE(mfusepy.FUSE):  # type: ignore[misc]
    """mfusepy's FUSE, without a copy of every byte read or written: a read copies the bytes
    straight into the kernel's buffer (:meth:`VolumeFS.read_into`; mfusepy's own ``read``
    copies the bytes ``read`` returned, themselves copied out of the fetched chunk), and a
    write hands the writer a view of the kernel's buffer (mfusepy copies it into ``bytes``
    first), valid during the call only: the writers copy what they keep (the view is released
    when the call returns, so one kept by mistake fails when used; a slice of it would not)."""

    def _wrapper(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        _keep_thread_state()
        return super()._wrapper(func, *args, **kwargs)

    def open(self, path: bytes, fip: Any) -> int:
        fi = fip.contents
        fi.fh = self.operations.open(path.decode(self.encoding, self.errors), fi.flags)
        if _NOFLUSH and not self.operations.flushes(fi.fh):
            fi.noflush = 1  # the kernel's close sends no FLUSH (libfuse >= 3.11)
        return 0

    def read(self, path: bytes | None, buf: Any, size: int, offset: int, fip: Any) -> int:
        dest = _address(buf)
        return int(self.operations.read_into(fip.contents.fh, size, offset, dest))

    def write(self, path: bytes | None, buf: Any, size: int, offset: int, fip: Any) -> int:
        source = _address(buf)
        view = memory_view(source, size)
        try:
            return int(self.operations.write(None, view, offset, fip.contents.fh))
        finally:
            view.release()


_NOFLUSH = hasattr(mfusepy.fuse_file_info, "noflush")


def _address(pointer: Any) -> int:
    """The address a ctypes pointer holds (its own 8 bytes read, where ``ctypes.cast`` is a
    foreign call: a microsecond more a request)."""
    return ctypes.c_void_p.from_buffer(pointer).value or 0


_kept = threading.local()
_gil_ensure = ctypes.pythonapi.PyGILState_Ensure
_gil_ensure.restype = ctypes.c_int


def _keep_thread_state() -> None:
    """Keep the calling libfuse thread's Python thread state from one request to the next.

    A ctypes callback on a thread that Python did not start gets a fresh thread state, deleted
    when it returns: each FUSE request mapped and unmapped a frame stack (an ``mmap``, a
    ``munmap`` and a TLB flush on every CPU) and built a new state, ~4 times for each small
    file read. One more ``PyGILState_Ensure``, never released, keeps the state; ctypes' own
    release still gives the GIL back after each request. libfuse keeps its threads for the
    mount's life (idle ones are not destroyed by default), so the states kept are bounded."""
    if not getattr(_kept, "state", False):
        _gil_ensure()
        _kept.state = True

"""A small ctypes layer over libnfs's synchronous API (Debian ``libnfs13``): NFS v3/v4 from
userspace, as this project's nodes have no NFS in their kernel.

No Python binding of libnfs is packaged (PyPI's ``libnfs`` is a SWIG build of an older
libnfs that needs its headers at install time), so the dozen calls used are declared here.
A :class:`NfsContext` is one mounted session (one TCP connection); libnfs contexts are not
thread-safe, so every call holds the context's lock. libnfs returns ``-errno``; the errno is
raised as :class:`OSError` and translated into openbai's errors by the backend. A call that
failed because the connection was lost is made again once it is back (``nfs_raw.py``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from openbai.errors import StorageError
from openbai.storage.nfs_command import valid_host
from openbai.storage.nfs_raw import SIGNATURES as raw_signatures
from openbai.storage.nfs_raw import RawNfs, handle_bytes

LIBRARY = "libnfs.so.13"


class _Stat64(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_uint64)
        for name in (
            "dev ino mode nlink uid gid rdev size blksize blocks atime mtime ctime"
            " atime_nsec mtime_nsec ctime_nsec used"
        ).split()
    ]


class _Timeval(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("usec", ctypes.c_long)]


class _Dirent(ctypes.Structure):
    pass


_Dirent._fields_ = [
    ("next", ctypes.POINTER(_Dirent)),
    ("name", ctypes.c_char_p),
    ("inode", ctypes.c_uint64),
    ("type", ctypes.c_uint32),
    ("mode", ctypes.c_uint32),
    ("size", ctypes.c_uint64),
    ("atime", _Timeval),
    ("mtime", _Timeval),
    ("ctime", _Timeval),
    ("uid", ctypes.c_uint32),
    ("gid", ctypes.c_uint32),
    ("nlink", ctypes.c_uint32),
    ("dev", ctypes.c_uint64),
    ("rdev", ctypes.c_uint64),
    ("blksize", ctypes.c_uint64),
    ("blocks", ctypes.c_uint64),
    ("used", ctypes.c_uint64),
    ("atime_nsec", ctypes.c_uint32),
    ("mtime_nsec", ctypes.c_uint32),
    ("ctime_nsec", ctypes.c_uint32),
]


class _Url(ctypes.Structure):
    _fields_ = [("server", ctypes.c_char_p), ("path", ctypes.c_char_p), ("file", ctypes.c_char_p)]


_P = ctypes.c_void_p
_S = ctypes.c_char_p
_I = ctypes.c_int
_U64 = ctypes.c_uint64
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "nfs_init_context": (_P, []),
    "nfs_destroy_context": (None, [_P]),
    "nfs_get_error": (_S, [_P]),
    "nfs_parse_url_dir": (ctypes.POINTER(_Url), [_P, _S]),
    "nfs_destroy_url": (None, [ctypes.POINTER(_Url)]),
    "nfs_mount": (_I, [_P, _S, _S]),
    "nfs_set_timeout": (None, [_P, _I]),
    "nfs_set_autoreconnect": (None, [_P, _I]),
    "nfs_set_dircache": (None, [_P, _I]),
    "nfs_get_readmax": (_U64, [_P]),
    "nfs_get_writemax": (_U64, [_P]),
    "nfs_stat64": (_I, [_P, _S, ctypes.POINTER(_Stat64)]),
    "nfs_fstat64": (_I, [_P, _P, ctypes.POINTER(_Stat64)]),
    "nfs_open": (_I, [_P, _S, _I, ctypes.POINTER(_P)]),
    "nfs_create": (_I, [_P, _S, _I, _I, ctypes.POINTER(_P)]),
    "nfs_close": (_I, [_P, _P]),
    "nfs_pread": (_I, [_P, _P, _U64, _U64, _P]),
    "nfs_pwrite": (_I, [_P, _P, _U64, _U64, _P]),
    "nfs_ftruncate": (_I, [_P, _P, _U64]),
    "nfs_mkdir": (_I, [_P, _S]),
    "nfs_rmdir": (_I, [_P, _S]),
    "nfs_unlink": (_I, [_P, _S]),
    "nfs_rename": (_I, [_P, _S, _S]),
    "nfs_utimes": (_I, [_P, _S, ctypes.POINTER(_Timeval * 2)]),
    "nfs_opendir": (_I, [_P, _S, ctypes.POINTER(_P)]),
    "nfs_readdir": (ctypes.POINTER(_Dirent), [_P, _P]),
    "nfs_closedir": (None, [_P, _P]),
}


@functools.cache
def library() -> ctypes.CDLL:
    """libnfs, loaded on first use; a StorageError saying what to install when it is missing."""
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("nfs") or LIBRARY)
    except OSError as e:
        raise StorageError(
            f"NFS needs libnfs ({LIBRARY}): apt-get install libnfs13", target="nfs"
        ) from e
    for name, (restype, argtypes) in {**_SIGNATURES, **raw_signatures}.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes
    return lib


@dataclass(frozen=True)
class Stat:
    is_dir: bool
    size: int
    mtime_ns: int
    mode: int


@dataclass(frozen=True)
class Entry:
    name: str
    is_dir: bool
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Server:
    """Where an export is: ``host``, the export's path, NFS version, ports (0: portmapper)."""

    host: str
    export: str
    version: int = 3
    port: int = 0
    mount_port: int = 0

    def url(self) -> str:
        """The libnfs URL of the export: built of checked parts only (a host that is no
        plain host name or address is refused, not read by libnfs as more of the URL)."""
        if not valid_host(self.host) or self.host.startswith("["):
            raise StorageError(
                f"{self.host!r} is not a host name, an IPv4 or an IPv6 address",
                target=self.host,
                code="NfsBadUrl",
            )
        query = {"version": str(self.version)}
        if self.port:
            query["nfsport"] = str(self.port)
        if self.mount_port and self.version == 3:
            query["mountport"] = str(self.mount_port)
        return f"nfs://{self.host}{quote(self.export)}?{urlencode(query)}"

    def __str__(self) -> str:
        port = f":{self.port}" if self.port else ""
        return f"nfs{self.version}://{self.host}{port}{self.export}"


#: libnfs 4.0 reports no READ/WRITE size for NFSv4 and fails to encode larger calls
_V4_MAX = 1024 * 1024
#: bytes one NFSv3 call moves at most: libnfs splits it into pipelined RPCs
_V3_CALL = 64 * 1024 * 1024
S_IFDIR = 0o040000
S_IFMT = 0o170000


class NfsContext:
    """One mounted NFS session. Paths are absolute inside the export (``/a/b``)."""

    def __init__(self, server: Server, *, timeout_ms: int = 30_000):
        self.server = server
        self.lib = library()
        self.lock = threading.RLock()
        ctx = self.lib.nfs_init_context()
        if not ctx:
            raise StorageError("libnfs could not make a context", target=str(server))
        self.ctx: int | None = ctx
        try:
            url = self.lib.nfs_parse_url_dir(ctx, server.url().encode())
            if not url:
                raise StorageError(
                    f"{server}: {self._error()}", target=str(server), code="NfsBadUrl"
                )
            try:
                self.lib.nfs_set_timeout(ctx, timeout_ms)
                # the directory cache answers lookups from listings other clients changed
                # since (a file renamed over another one is "not found")
                self.lib.nfs_set_dircache(ctx, 0)
                rc = self.lib.nfs_mount(ctx, url.contents.server, url.contents.path)
            finally:
                self.lib.nfs_destroy_url(url)
            if rc < 0:
                raise OSError(-rc, f"cannot mount {server}: {self._error()}")
            self.raw = RawNfs(self.lib, ctx, timeout_ms, str(server))
        except BaseException:
            self.close()
            raise

    def _error(self) -> str:
        message = self.lib.nfs_get_error(self.ctx)
        return message.decode(errors="replace") if message else "unknown error"

    def _check(self, rc: int, what: str, path: str) -> int:
        if rc < 0:
            raise OSError(-rc, f"{what} {path}: {self._error()}", path)
        return rc

    def _call(self, what: str, path: str, function: Callable[..., int], *args: Any) -> int:
        """libnfs's ``function(ctx, *args)``, its ``-errno`` raised (the caller holds the lock)."""
        return self.raw.reconnecting(
            lambda: self._check(function(self.ctx, *args), what, path), f"{what} {path}"
        )

    def close(self) -> None:
        with self.lock:
            if self.ctx:
                self.lib.nfs_destroy_context(self.ctx)
                self.ctx = None

    @property
    def read_max(self) -> int:
        """Bytes one read call may ask for (libnfs's NFSv4 client cannot split larger ones)."""
        return int(self.lib.nfs_get_readmax(self.ctx)) if self.server.version == 3 else _V4_MAX

    @property
    def write_max(self) -> int:
        return int(self.lib.nfs_get_writemax(self.ctx)) if self.server.version == 3 else _V4_MAX

    # -- paths -------------------------------------------------------------------------
    def stat(self, path: str) -> Stat:
        st = _Stat64()
        with self.lock:
            self._call("stat", path, self.lib.nfs_stat64, path.encode(), ctypes.byref(st))
        return _stat(st)

    def listdir(self, path: str) -> list[Entry]:
        handle = ctypes.c_void_p()
        entries = []
        with self.lock:
            self._call("opendir", path, self.lib.nfs_opendir, path.encode(), ctypes.byref(handle))
            try:
                while True:
                    ent = self.lib.nfs_readdir(self.ctx, handle)
                    if not ent:
                        break
                    e = ent.contents
                    name = os.fsdecode(e.name or b"")
                    if name in (".", ".."):
                        continue
                    mtime = e.mtime.sec * 1_000_000_000 + e.mtime_nsec
                    is_dir = (e.mode & S_IFMT) == S_IFDIR
                    entries.append(Entry(name, is_dir, 0 if is_dir else e.size, mtime))
            finally:
                self.lib.nfs_closedir(self.ctx, handle)
        return entries

    def mkdir(self, path: str) -> None:
        with self.lock:
            self._call("mkdir", path, self.lib.nfs_mkdir, path.encode())

    def rmdir(self, path: str) -> None:
        with self.lock:
            self._call("rmdir", path, self.lib.nfs_rmdir, path.encode())

    def unlink(self, path: str) -> None:
        with self.lock:
            self._call("unlink", path, self.lib.nfs_unlink, path.encode())

    def rename(self, source: str, target: str) -> None:
        with self.lock:
            self._call("rename", source, self.lib.nfs_rename, source.encode(), target.encode())

    def set_times(self, path: str, atime_ns: int, mtime_ns: int) -> None:
        times = (_Timeval * 2)(
            _Timeval(atime_ns // 1_000_000_000, atime_ns % 1_000_000_000 // 1000),
            _Timeval(mtime_ns // 1_000_000_000, mtime_ns % 1_000_000_000 // 1000),
        )
        with self.lock:
            self._call("utimes", path, self.lib.nfs_utimes, path.encode(), times)

    def commit(self, fh: bytes, path: str) -> bytes:
        """COMMIT the file of handle ``fh`` (see :meth:`NfsFile.commit`)."""
        with self.lock:
            return self.raw.reconnecting(lambda: self.raw.commit(fh, path), f"commit {path}")

    # -- files -------------------------------------------------------------------------
    def open(self, path: str, flags: int, mode: int = 0o644) -> NfsFile:
        handle = ctypes.c_void_p()
        name, ref = path.encode(), ctypes.byref(handle)
        with self.lock:
            if flags & os.O_CREAT:
                self._call("open", path, self.lib.nfs_create, name, flags & ~os.O_CREAT, mode, ref)
            else:
                self._call("open", path, self.lib.nfs_open, name, flags, ref)
        return NfsFile(self, handle.value or 0, path)


class NfsFile:
    """An open file of one context; its calls hold that context's lock."""

    def __init__(self, context: NfsContext, handle: int, path: str):
        self.context = context
        self.path = path
        self._handle: int | None = handle

    def _h(self) -> int:
        if self._handle is None:
            raise OSError(errno.EBADF, f"{self.path} is closed", self.path)
        return self._handle

    def pread(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``offset``, fewer only at the end of the file."""
        buffer = ctypes.create_string_buffer(length)
        done = self._pread(offset, length, ctypes.addressof(buffer))
        return buffer.raw[:done]

    def pread_into(self, offset: int, into: memoryview) -> int:
        """Up to ``len(into)`` bytes at ``offset`` received straight into ``into`` (writable);
        how many: fewer only at the end of the file."""
        if not len(into):
            return 0
        shared = (ctypes.c_char * len(into)).from_buffer(into)
        return self._pread(offset, len(into), ctypes.addressof(shared))

    def _pread(self, offset: int, length: int, base: int) -> int:
        c = self.context
        done = 0
        step = c.read_max if c.server.version == 4 else _V3_CALL
        with c.lock:
            while done < length:
                view = ctypes.c_void_p(base + done)
                count = min(step, length - done)
                got = c._call(
                    "read", self.path, c.lib.nfs_pread, self._h(), offset + done, count, view
                )
                if got == 0:
                    break
                done += got
        return done

    def pwrite(self, offset: int, data: bytes | bytearray) -> None:
        """All of ``data`` at ``offset``, sent from where it lies (no copy)."""
        if not data:
            return
        c = self.context
        if isinstance(data, bytearray):  # exported (not resizable) while ``shared`` lives
            shared = (ctypes.c_char * len(data)).from_buffer(data)
            base = ctypes.addressof(shared)
        else:  # libnfs only reads it: the bytes object's own buffer, kept alive by ``data``
            base = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value or 0
        done = 0
        step = c.write_max if c.server.version == 4 else _V3_CALL
        with c.lock:
            while done < len(data):
                view = ctypes.c_void_p(base + done)
                count = min(step, len(data) - done)
                wrote = c._call(
                    "write", self.path, c.lib.nfs_pwrite, self._h(), offset + done, count, view
                )
                if wrote == 0:
                    raise OSError(errno.EIO, f"write {self.path}: no progress", self.path)
                done += wrote

    def stat(self) -> Stat:
        st = _Stat64()
        c = self.context
        with c.lock:
            c._call("fstat", self.path, c.lib.nfs_fstat64, self._h(), ctypes.byref(st))
        return _stat(st)

    def commit(self) -> bytes:
        """COMMIT what was written (the server writes it to its disk); the server's write
        verifier, which changes when it restarts: writes it had acknowledged but not
        committed before a restart may be gone, and must be sent again (RFC 1813, 3.3.21)."""
        return self.context.commit(self.fh(), self.path)

    def fh(self) -> bytes:
        """The file's NFS handle (any session may use it)."""
        c = self.context
        with c.lock:
            return handle_bytes(c.lib.nfs_get_fh(self._h()).contents)

    def truncate(self, size: int) -> None:
        c = self.context
        with c.lock:
            c._call("truncate", self.path, c.lib.nfs_ftruncate, self._h(), size)

    def close(self) -> None:
        c = self.context
        with c.lock:
            if self._handle is not None and c.ctx:
                handle, self._handle = self._handle, None
                c._check(c.lib.nfs_close(c.ctx, handle), "close", self.path)


def _stat(st: _Stat64) -> Stat:
    is_dir = (st.mode & S_IFMT) == S_IFDIR
    return Stat(
        is_dir=is_dir,
        size=0 if is_dir else int(st.size),
        mtime_ns=int(st.mtime) * 1_000_000_000 + int(st.mtime_nsec),
        mode=int(st.mode),
    )

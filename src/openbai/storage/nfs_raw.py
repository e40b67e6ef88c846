"""libnfs's raw NFSv3 COMMIT, which shows what its high-level ``nfs_fsync`` drops: the
server's write verifier (see ``WriteVerifier`` in ``nfs_writer.py``).

A call is queued on the context's RPC connection, which is then served until the call's
callback ran (the caller holds the context's lock: libnfs contexts are not thread-safe).
Reading through raw calls too (a LOOKUP and a READ by handle instead of ``nfs_open``'s
LOOKUPs and ACCESS) was tried and was slower: this loop in Python costs more CPU than the
two round trips it saved, which libnfs's own loop serves in C.

A lost connection is made again here too (:meth:`RawNfs.reconnecting`), with a pause between
tries: libnfs 4.0's own reconnection tries again at once, and a server that refuses (its port
closed) had it spin a core until the server came back or the timeout passed.
"""

from __future__ import annotations

import ctypes
import errno
import select
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class _NfsTime3(ctypes.Structure):
    _fields_ = [("seconds", ctypes.c_uint32), ("nseconds", ctypes.c_uint32)]


class _WccAttr(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint64), ("mtime", _NfsTime3), ("ctime", _NfsTime3)]


class _Fattr3(ctypes.Structure):
    _fields_ = [
        *((name, ctypes.c_uint32) for name in ("type", "mode", "nlink", "uid", "gid")),
        *((name, ctypes.c_uint64) for name in ("size", "used")),
        ("rdev", ctypes.c_uint32 * 2),
        *((name, ctypes.c_uint64) for name in ("fsid", "fileid")),
        ("times", _NfsTime3 * 3),
    ]


class _PreOpAttr(ctypes.Structure):
    _fields_ = [("follow", ctypes.c_uint32), ("attributes", _WccAttr)]


class _PostOpAttr(ctypes.Structure):
    _fields_ = [("follow", ctypes.c_uint32), ("attributes", _Fattr3)]


class NfsFh3(ctypes.Structure):  # nfs_fh3, and libnfs's own nfs_fh (the same layout)
    _fields_ = [("len", ctypes.c_uint32), ("val", ctypes.c_void_p)]


class _Commit3Args(ctypes.Structure):
    _fields_ = [("file", NfsFh3), ("offset", ctypes.c_uint64), ("count", ctypes.c_uint32)]


class _Commit3Res(ctypes.Structure):
    _fields_ = [
        ("status", ctypes.c_int),
        ("before", _PreOpAttr),
        ("after", _PostOpAttr),
        ("verf", ctypes.c_uint8 * 8),
    ]


_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
_P, _I = ctypes.c_void_p, ctypes.c_int
SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "nfs_get_rpc_context": (_P, [_P]),
    "nfs_get_fh": (ctypes.POINTER(NfsFh3), [_P]),
    "rpc_nfs3_commit_async": (_I, [_P, _CB, ctypes.POINTER(_Commit3Args), _P]),
    "rpc_get_fd": (_I, [_P]),
    "rpc_which_events": (_I, [_P]),
    "rpc_service": (_I, [_P, _I]),
    "rpc_get_error": (ctypes.c_char_p, [_P]),
    "rpc_set_autoreconnect": (None, [_P, _I]),
}

_SUCCESS, _ERROR = 0, 1  # RPC_STATUS_*
#: tries libnfs makes at once to connect again (the rest is :meth:`RawNfs.reconnecting`'s,
#: paused): at least one, as with none a reset connection leaves libnfs's calls in flight
#: (a sync call's callback on a stack frame gone) instead of failing them
_LIBNFS_TRIES = 1
#: the pauses between tries to connect again: doubled from the first up to the longest
_FIRST_PAUSE, _LONGEST_PAUSE = 0.05, 1.0
_FAILED = select.POLLERR | select.POLLHUP
#: nfsstat3 values that are not the errno of the same number
_ERRNO = {
    63: errno.ENAMETOOLONG,
    66: errno.ENOTEMPTY,
    69: errno.EDQUOT,
    70: errno.ESTALE,
    10001: errno.ESTALE,  # NFS3ERR_BADHANDLE
}
_SAME = {
    errno.EPERM,
    errno.ENOENT,
    errno.EIO,
    errno.ENXIO,
    errno.EACCES,
    errno.EEXIST,
    errno.EXDEV,
    errno.ENODEV,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.EINVAL,
    errno.EFBIG,
    errno.ENOSPC,
    errno.EROFS,
    errno.EMLINK,
}


def status_errno(status: int) -> int:
    """The errno of an NFSv3 status (EIO for those without one)."""
    return _ERRNO.get(status, status if status in _SAME else errno.EIO)


def handle_bytes(fh: NfsFh3) -> bytes:
    return ctypes.string_at(fh.val, fh.len) if fh.len else b""


class RawNfs:
    """The raw calls on one mounted context (``nfs``), within ``timeout_ms`` each."""

    def __init__(self, lib: ctypes.CDLL, nfs: int, timeout_ms: int, where: str):
        self._lib = lib
        self._rpc = lib.nfs_get_rpc_context(nfs)
        self._timeout = timeout_ms / 1000
        self._where = where
        #: what to do with each call's answer, by the token the call was queued with
        self._answers: dict[int, Callable[[int, int], None]] = {}
        self._tokens = 0
        self._callback = _CB(self._dispatch)  # one closure, alive as long as the context
        self._poller = select.poll()
        self._polled = -1  # the fd registered
        lib.rpc_set_autoreconnect(self._rpc, _LIBNFS_TRIES)

    def reconnecting(self, call: Callable[[], T], what: str) -> T:
        """``call`` (a call on this context), made again on a new connection while it fails
        because the last one was lost, until the timeout has passed since it was first made;
        then an ETIMEDOUT naming ``what``."""
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                return call()
            except OSError as e:
                if self.connected():
                    raise
                if not self._reconnect(deadline):
                    raise OSError(errno.ETIMEDOUT, f"{what}: no answer from {self._where}") from e

    def connected(self) -> bool:
        # libnfs polls a connected socket for POLLIN, one still connecting for POLLOUT only
        return bool(self._lib.rpc_which_events(self._rpc) & select.POLLIN)

    def _reconnect(self, deadline: float) -> bool:
        """Whether the connection was made again before ``deadline``. libnfs makes each try
        (and binds a reserved port for it, as at mount), as it would by itself with no limit
        on tries; the pause between them is this loop's."""
        pause = _FIRST_PAUSE
        self._lib.rpc_set_autoreconnect(self._rpc, -1)
        try:
            while not self.connected():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                revents = self._poll(min(left, _LONGEST_PAUSE))
                if revents & _FAILED:  # refused: the next try (rpc_service's), after a pause
                    time.sleep(min(pause, left))
                    pause = min(2 * pause, _LONGEST_PAUSE)
                self._lib.rpc_service(self._rpc, revents)  # (-1: a try that failed at once)
            return True
        finally:
            self._lib.rpc_set_autoreconnect(self._rpc, _LIBNFS_TRIES)

    def commit(self, fh: bytes, path: str) -> bytes:
        """COMMIT all of the file ``fh``; the server's write verifier."""
        verifiers: list[bytes] = []
        failures: list[OSError] = []

        def answer(status: int, data: int) -> None:
            if status != _SUCCESS or not data:
                why = ctypes.string_at(data) if status == _ERROR and data else b""
                message = why.decode(errors="replace") or "the connection was lost"
                failures.append(OSError(errno.EIO, f"commit {path}: {message}", path))
                return
            res = ctypes.cast(data, ctypes.POINTER(_Commit3Res)).contents
            if res.status:
                code = status_errno(res.status)
                name = errno.errorcode.get(code, str(code))
                failures.append(OSError(code, f"commit {path}: {name}", path))
            else:
                verifiers.append(bytes(res.verf))

        self._tokens += 1
        token = self._tokens
        self._answers[token] = answer
        # libnfs encodes the arguments as the call is queued: they need not outlive it
        args = _Commit3Args(_fh3(fh), 0, 0)
        if self._lib.rpc_nfs3_commit_async(self._rpc, self._callback, ctypes.byref(args), token):
            del self._answers[token]
            raise OSError(errno.EIO, f"commit {path}: {self._error()}", path)
        self._serve(lambda: bool(verifiers or failures), f"commit {path}")
        if failures:
            raise failures[0]
        return verifiers[0]

    def _dispatch(self, rpc: int, status: int, data: int, token: int) -> None:
        """libnfs's one callback for every raw call, to the call's answer by its token (a
        call this side gave up waiting for is still answered, or cancelled, later)."""
        answer = self._answers.pop(token or 0, None)
        if answer is not None:
            answer(status, data)

    def _serve(self, answered: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + self._timeout
        while not answered():
            if self._lib.rpc_service(self._rpc, self._poll(0.1)) < 0:
                raise OSError(errno.EIO, f"{what}: {self._error()}")
            if not answered() and time.monotonic() > deadline:
                raise OSError(errno.ETIMEDOUT, f"{what}: no answer from {self._where}")

    def _poll(self, timeout: float) -> int:
        """The events of the connection's socket within ``timeout`` seconds (0: none)."""
        fd = self._lib.rpc_get_fd(self._rpc)  # (a reconnect may change it)
        if fd != self._polled and self._polled >= 0:
            self._poller.unregister(self._polled)
        self._poller.register(fd, self._lib.rpc_which_events(self._rpc))
        self._polled = fd
        ready = self._poller.poll(int(timeout * 1000))
        return ready[0][1] if ready else 0

    def _error(self) -> str:
        message = self._lib.rpc_get_error(self._rpc)
        return message.decode(errors="replace") if message else "unknown error"


def _fh3(fh: bytes) -> NfsFh3:
    """An ``nfs_fh3`` of ``fh`` (its bytes are those of the bytes object, alive meanwhile)."""
    return NfsFh3(len(fh), ctypes.cast(ctypes.c_char_p(fh), ctypes.c_void_p).value)

"""NFS exports as storage: a file server's export, or one named by a job's ``mount -t nfs``.

Options (of a file server, or parsed from an ``unmanagedFileSystems`` mount command):

- ``host``: the server's address; ``export``: the exported path (``/mnt/data``);
- ``version``: 3 or 4, accepted; files move over NFSv3 either way, because libnfs 4.0's NFSv4
  client cannot write more than ~4 KB in one call ("Failed to encode COMPOUND4args") and
  Debian ships no other userspace client. Servers that export v4 only are not reachable.
- ``port`` / ``mount_port``: the NFS and MOUNT ports (0, the default: asked of the server's
  portmapper, as a kernel client does).

The backend serves one volume, named by the export path. It speaks NFS from userspace through
libnfs (``nfs_client.py``): these nodes have no NFS client in their kernel. Each session is
one TCP connection used by one thread at a time, so a small pool of sessions serves the
threads of a FUSE mount; an open file stays on the session that opened it.

- ``open_writer`` (a mount's writes) writes behind in runs of 8 MiB, but sends a small write
  at once when nothing is in flight (``shows_appends_live``: a running job's stdout is
  followed through another session while it grows); ``flush`` sends the rest and COMMITs.
  A failed write is kept and raised by the next call (see :class:`NfsFileWriter`); what was
  written is kept until a COMMIT shows the server did not restart since (its write verifier),
  and sent again if it did (:class:`WriteVerifier`). Uploads are sent again whole.
- Uploads go to a hidden temporary name renamed over the target, so readers never see half
  a file.
- Paths are checked by ``clean_path`` (no ``..``, nothing absolute), so they stay inside the
  export.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import posixpath
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from openbai.errors import (
    BackendUnavailableError,
    ConflictError,
    NotFoundError,
    OpenBaiError,
    PermissionDeniedError,
    SpecError,
    StorageError,
)
from openbai.storage.atomic import PARTIAL_SUFFIX, atomic_target, is_partial_name
from openbai.storage.base import (
    FileInfo,
    FileReader,
    FileWriter,
    StorageBackend,
    VolumeInfo,
    VolumeKind,
    clean_path,
)
from openbai.storage.nfs_client import NfsContext, NfsFile, Server

log = logging.getLogger("openbai.storage")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: bytes moved per call by uploads and downloads (libnfs pipelines the RPCs of one call)
_CHUNK = 8 * 1024 * 1024
#: sessions one backend opens at most (one per thread in flight)
_MAX_SESSIONS = 8
#: bytes a mount's writer gathers into one call written behind (as uploads' calls)
_RUN = _CHUNK
#: a write smaller than this is sent at once when nothing is in flight (a line of stdout)
_SMALL_WRITE = 64 * 1024
#: seconds a mount's writer fails at once after a call failed, before asking the server again
_QUIET = 5.0
#: bytes of a file a mount's writer keeps after sending them, until a COMMIT whose verifier
#: says the server did not restart meanwhile; past it, the writer waits for a COMMIT (which
#: stalls its writes); the COMMITs sent behind (``_COMMIT_BEHIND``) keep it from getting there
_KEEP_UNCOMMITTED = 256 * 1024 * 1024
#: the same for all the files of a backend (a mount) at once
_KEEP_ALL = 1024 * 1024 * 1024
#: bytes kept after which a COMMIT is sent behind, on another connection, while the writes go
#: on: what it covers is let go when it comes back, and its memory serves the next runs
_COMMIT_BEHIND = 32 * 1024 * 1024
#: small runs a writer keeps before joining them (see ``NfsFileWriter._join_small_kept``)
_SMALL_KEPT = 64
#: times a COMMIT's verifier may show a restart before the flush or upload gives up
_RESTARTS = 3

#: what a read of a file replaced meanwhile fails with (libnfs reports some as EFAULT)
_REPLACED = {errno.ESTALE, errno.EFAULT}
_REPLACED_RETRIES = 5
_NOT_FOUND = {errno.ENOENT, errno.ENOTDIR, errno.ESTALE}
_CONFLICT = {errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}
#: (libnfs reports a connection the server closed, "Socket failed with POLLHUP", as EINTR)
_UNAVAILABLE = {
    errno.ECONNREFUSED,
    errno.ETIMEDOUT,
    errno.EIO,
    errno.ECONNRESET,
    errno.EPIPE,
    errno.EINTR,
}


@contextlib.contextmanager
def translate(where: str) -> Iterator[None]:
    """libnfs's errnos as openbai's errors, naming ``where``."""
    try:
        yield
    except OpenBaiError:
        raise
    except OSError as e:
        message = f"{where}: {e.strerror or e} ({errno.errorcode.get(e.errno or 0, e.errno)})"
        if e.errno in _NOT_FOUND:
            raise NotFoundError(message, target=where) from e
        if e.errno in _CONFLICT:
            raise ConflictError(message, target=where) from e
        if e.errno in _DENIED:
            raise PermissionDeniedError(message, target=where) from e
        if e.errno in _UNAVAILABLE:
            raise BackendUnavailableError(message, target=where) from e
        raise StorageError(message, target=where) from e


def server_of(options: dict[str, Any]) -> Server:
    """The export an account's (or a mount command's) options name."""
    host = str(options.get("host") or "")
    export = str(options.get("export") or "")
    if not host:
        raise SpecError("an NFS volume needs its server's 'host'", target="host")
    if not export.startswith("/"):
        raise SpecError(f"the NFS export must be an absolute path, got {export!r}", target="export")
    version = int(options.get("version") or 3)
    if version not in (3, 4):
        raise SpecError(f"NFS version must be 3 or 4, got {version}", target="version")
    return Server(
        host,
        posixpath.normpath(export),
        3,  # see the module's docstring: libnfs's NFSv4 writes are broken
        int(options.get("port") or 0),
        int(options.get("mount_port") or 0),
    )


class NfsStorage(StorageBackend):
    """The one export of an NFS server, as a volume named by its path."""

    name: ClassVar[str] = "nfs"
    shows_appends_live: ClassVar[bool] = True
    supports_writer: ClassVar[bool] = True

    def __init__(self, server: Server, *, timeout: float = 30):
        self.server = server
        self.timeout = timeout
        self._sessions: list[NfsContext] = []
        self._lock = threading.Lock()
        self._next = 0
        #: runs of mounts' writers written behind (one in flight per file)
        self._behind = ThreadPoolExecutor(_MAX_SESSIONS, thread_name_prefix="openbai-nfs-write")
        self.verifier = WriteVerifier()
        self.kept = KeptBytes()

    @classmethod
    def from_options(cls, account: str, kind: VolumeKind, options: dict[str, Any]) -> NfsStorage:
        return cls(server_of(options), timeout=float(options.get("timeout", 30)))

    @property
    def export(self) -> str:
        return self.server.export

    # -- sessions ----------------------------------------------------------------------
    def _session(self, avoid: NfsContext | None = None) -> NfsContext:
        """An idle session, a new one while there are fewer than the cap, else a busy one;
        not ``avoid`` while there is another."""
        with self._lock:
            for session in self._sessions:
                if session is not avoid and session.lock.acquire(blocking=False):
                    session.lock.release()
                    return session
            if len(self._sessions) < _MAX_SESSIONS:
                with translate(str(self.server)):
                    session = NfsContext(self.server, timeout_ms=int(self.timeout * 1000))
                self._sessions.append(session)
                return session
            others = [s for s in self._sessions if s is not avoid] or self._sessions
            self._next = (self._next + 1) % len(others)
            return others[self._next]

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, []
        self._behind.shutdown(wait=True)
        for session in sessions:
            session.close()

    def _abs(self, volume: str, path: str) -> str:
        if posixpath.normpath(volume or "/") != self.export:
            raise NotFoundError(
                f"{self.server.host} exports {self.export}, not {volume!r}", target=volume
            )
        return "/" + path if path else "/"

    # -- volumes -----------------------------------------------------------------------
    def list_volumes(self) -> list[VolumeInfo]:
        return [VolumeInfo(self.export, VolumeKind.FILE)]

    def create_volume(self, volume: str) -> VolumeInfo:
        if posixpath.normpath(volume) == self.export:
            raise ConflictError(f"{volume} is already exported", target=volume)
        raise StorageError(
            f"{self.server.host} exports only {self.export}; make a directory in it instead",
            target=volume,
        )

    def delete_volume(self, volume: str) -> None:
        raise StorageError(f"the export {volume} of an NFS server cannot be deleted", target=volume)

    def volume_exists(self, volume: str) -> bool:
        if posixpath.normpath(volume or "/") != self.export:
            return False
        self.stat(volume, "")
        return True

    # -- files -------------------------------------------------------------------------
    def stat(self, volume: str, path: str) -> FileInfo:
        cleaned = clean_path(path)
        where = f"{volume}/{cleaned}"
        with translate(where):
            st = self._session().stat(self._abs(volume, cleaned))
        return FileInfo(cleaned, st.is_dir, st.size, _modified(st.mtime_ns))

    def list_dir(
        self, volume: str, path: str = "", *, recursive: bool = False
    ) -> Iterator[FileInfo]:
        cleaned = clean_path(path)
        if not self.stat(volume, cleaned).is_dir:
            where = f"{volume}/{cleaned}"
            raise NotFoundError(f"{where}: not a directory", target=where)
        pending = [cleaned]
        while pending:
            directory = pending.pop()
            with translate(f"{volume}/{directory}"):
                entries = self._session().listdir(self._abs(volume, directory))
            for entry in sorted(entries, key=lambda e: e.name):
                if is_partial_name(entry.name):
                    continue
                rel = f"{directory}/{entry.name}" if directory else entry.name
                info = FileInfo(rel, entry.is_dir, entry.size, _modified(entry.mtime_ns))
                if info.is_dir and recursive:
                    pending.append(rel)
                elif not recursive or not info.is_dir:
                    yield info

    def _open(self, volume: str, path: str, flags: int) -> NfsFile:
        return self._session().open(self._abs(volume, path), flags)

    def read(self, volume: str, path: str, offset: int = 0, length: int | None = None) -> bytes:
        cleaned = clean_path(path, allow_root=False)
        with translate(f"{volume}/{cleaned}"):
            for attempt in range(_REPLACED_RETRIES, -1, -1):
                try:
                    return self._read(volume, cleaned, offset, length)
                except OSError as e:
                    # the file was replaced (renamed over) between our open and read: NFS
                    # keeps no unlinked file for other clients, so open the new one
                    if e.errno not in _REPLACED or not attempt:
                        raise
        raise AssertionError("unreachable")

    def read_into(self, volume: str, path: str, offset: int, into: memoryview) -> int:
        """A mount's ranged read, received straight into its chunk's buffer."""
        cleaned = clean_path(path, allow_root=False)
        with translate(f"{volume}/{cleaned}"):
            for attempt in range(_REPLACED_RETRIES, -1, -1):
                try:
                    f = self._open(volume, cleaned, os.O_RDONLY)
                    try:
                        return f.pread_into(offset, into)
                    finally:
                        with contextlib.suppress(OSError):
                            f.close()
                except OSError as e:
                    if e.errno not in _REPLACED or not attempt:  # see read()
                        raise
        raise AssertionError("unreachable")

    def _read(self, volume: str, path: str, offset: int, length: int | None) -> bytes:
        f = self._open(volume, path, os.O_RDONLY)
        try:
            if length is None:
                length = max(0, f.stat().size - offset)
            return f.pread(offset, length)
        finally:
            with contextlib.suppress(OSError):
                f.close()

    def open_file(self, volume: str, path: str) -> FileReader:
        cleaned = clean_path(path)
        info = self.stat(volume, cleaned)
        if info.is_dir:
            return FileReader(self, volume, cleaned, info)
        with translate(f"{volume}/{cleaned}"):
            handle = self._open(volume, cleaned, os.O_RDONLY)
            try:
                st = handle.stat()  # of the file opened, which may have replaced the one seen
            except OSError:
                with contextlib.suppress(OSError):
                    handle.close()
                raise
        info = FileInfo(cleaned, False, st.size, _modified(st.mtime_ns))
        return _NfsReader(self, volume, cleaned, info, handle)

    def upload(self, volume: str, path: str, source: Path) -> FileInfo:
        cleaned = clean_path(path, allow_root=False)
        where = f"{volume}/{cleaned}"
        parent, _, name = cleaned.rpartition("/")
        tmp = f"{parent}/.{name[:100]}.{os.urandom(6).hex()}{PARTIAL_SUFFIX}".lstrip("/")
        if parent:
            self.make_dir(volume, parent)
        with translate(where):
            st = source.stat()
            if not source.is_file():
                raise IsADirectoryError(errno.EISDIR, "not a file", str(source))
            session = self._session()
            target = session.open(self._abs(volume, tmp), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            try:
                for _ in range(_RESTARTS):
                    epoch = self.verifier.known(target)
                    with open(source, "rb") as src:
                        offset = 0
                        while chunk := src.read(_CHUNK):
                            target.pwrite(offset, chunk)
                            offset += len(chunk)
                    if self.verifier.committed(target, epoch):
                        break
                    log.warning("%s: the NFS server restarted during the upload: again", where)
                else:
                    raise OSError(errno.EIO, f"{where}: the NFS server kept restarting", where)
                target.close()
                session.set_times(self._abs(volume, tmp), st.st_atime_ns, st.st_mtime_ns)
                session.rename(self._abs(volume, tmp), self._abs(volume, cleaned))
            except BaseException:
                with contextlib.suppress(Exception):
                    target.close()
                with contextlib.suppress(Exception):
                    session.unlink(self._abs(volume, tmp))
                raise
        return FileInfo(cleaned, False, st.st_size, _modified(st.st_mtime_ns))

    def download(self, volume: str, path: str, target: Path) -> None:
        cleaned = clean_path(path, allow_root=False)
        with translate(f"{volume}/{cleaned}"):
            f = self._open(volume, cleaned, os.O_RDONLY)
            try:
                with atomic_target(target) as tmp, open(tmp, "wb") as out:
                    offset = 0
                    while data := f.pread(offset, _CHUNK):
                        out.write(data)
                        offset += len(data)
            finally:
                f.close()

    def delete(self, volume: str, path: str) -> None:
        cleaned = clean_path(path, allow_root=False)
        info = self.stat(volume, cleaned)
        with translate(f"{volume}/{cleaned}"):
            session = self._session()
            if not info.is_dir:
                session.unlink(self._abs(volume, cleaned))
                return
            directories = [cleaned]
            for entry in self._walk(volume, cleaned):
                if entry.is_dir:
                    directories.append(entry.path)
                else:
                    session.unlink(self._abs(volume, entry.path))
            for directory in sorted(directories, key=len, reverse=True):
                session.rmdir(self._abs(volume, directory))

    def _walk(self, volume: str, top: str) -> Iterator[FileInfo]:
        """Every entry under ``top``, folders too, partial uploads included."""
        pending = [top]
        while pending:
            directory = pending.pop()
            for entry in self._session().listdir(self._abs(volume, directory)):
                rel = f"{directory}/{entry.name}"
                yield FileInfo(rel, entry.is_dir)
                if entry.is_dir:
                    pending.append(rel)

    def make_dir(self, volume: str, path: str) -> None:
        cleaned = clean_path(path)
        where = f"{volume}/{cleaned}"
        with translate(where):
            session = self._session()
            session.stat(self._abs(volume, ""))
            done = ""
            for part in cleaned.split("/") if cleaned else []:
                done = f"{done}/{part}" if done else part
                try:
                    session.mkdir(self._abs(volume, done))
                except OSError as e:
                    if e.errno != errno.EEXIST:
                        raise
                    if not session.stat(self._abs(volume, done)).is_dir:
                        raise ConflictError(f"{where}: a file is in the way", target=where) from e

    # -- in-place writing (mounts) -----------------------------------------------------
    def open_writer(self, volume: str, path: str, *, truncate: bool = False) -> FileWriter:
        cleaned = clean_path(path, allow_root=False)
        where = f"{volume}/{cleaned}"
        parent = cleaned.rpartition("/")[0]
        flags = os.O_RDWR | os.O_CREAT | (os.O_TRUNC if truncate else 0)
        with translate(where):
            try:
                handle = self._open(volume, cleaned, flags)
            except FileNotFoundError:
                if not parent:
                    raise
                # its folder is missing: made only then (three more round trips per file)
                self.make_dir(volume, parent)
                handle = self._open(volume, cleaned, flags)
            try:
                self.verifier.known(handle)  # the backend's first file: asked now, not mid-write
            except OSError:
                with contextlib.suppress(OSError):
                    handle.close()
                raise
        return NfsFileWriter(
            handle, where, self._behind, self.verifier, self.kept, self._commit_elsewhere
        )

    def _commit_elsewhere(self, handle: NfsFile) -> bytes:
        """COMMIT ``handle``'s file on another session than its own (its writes go on
        meanwhile); the verifier."""
        fh = handle.fh()
        return self._session(avoid=handle.context).commit(fh, handle.path)

    def rename(self, volume: str, source: str, target: str) -> None:
        src = clean_path(source, field="source", allow_root=False)
        dst = clean_path(target, field="target", allow_root=False)
        parent = dst.rpartition("/")[0]
        if parent:
            self.make_dir(volume, parent)
        with translate(f"{volume}/{src}"):
            self._session().rename(self._abs(volume, src), self._abs(volume, dst))


class WriteVerifier:
    """The server's write verifier as last seen by this backend's COMMITs.

    An NFSv3 server acknowledges a WRITE before its data is on disk (UNSTABLE); only a COMMIT
    makes it durable, and its verifier (8 bytes, changed by every restart of the server) tells
    whether the server restarted since the writes: if so, what it had not committed may be
    gone and is sent again. The verifier known before a file's first write since its last
    COMMIT is that file's epoch; an epoch that is not the COMMIT's verifier means a restart
    (or, harmlessly, that another file's COMMIT had not yet shown an earlier one)."""

    def __init__(self) -> None:
        self._value: bytes | None = None
        self._lock = threading.Lock()

    def known(self, handle: NfsFile) -> bytes:
        """The verifier now, asked of the server (a COMMIT of ``handle``) the first time."""
        if self._value is None:
            value = handle.commit()
            with self._lock:
                self._value = self._value or value
        return self._value

    def committed(self, handle: NfsFile, epoch: bytes) -> bool:
        """COMMIT ``handle``; True if the server did not restart since ``epoch``."""
        return self.seen(handle.commit(), epoch)

    def seen(self, value: bytes, epoch: bytes) -> bool:
        """A COMMIT answered ``value``: True if the server did not restart since ``epoch``."""
        with self._lock:
            self._value = value
        return value == epoch


class KeptBytes:
    """The bytes all of a backend's writers keep to send again after a restart: one bound
    (``_KEEP_ALL``) for a whole mount, beside each file's own (``_KEEP_UNCOMMITTED``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0

    def count(self, change: int) -> None:
        with self._lock:
            self.total += change


def joined_runs(runs: list[tuple[int, bytearray]]) -> list[tuple[int, bytearray]]:
    """``runs`` (offset, bytes), in order, with each sequence of small runs that follow one
    another in the file joined into one; the others as they are."""
    joined: list[tuple[int, bytearray]] = []
    group: list[bytearray] = []  # small runs, one after another
    end = 0  # where the group ends in the file

    def close_group() -> None:
        if group:
            size = sum(map(len, group))
            joined.append((end - size, group[0] if len(group) == 1 else bytearray().join(group)))
            group.clear()

    for start, run in runs:
        if len(run) >= _SMALL_WRITE:
            close_group()
            joined.append((start, run))
            continue
        if group and start != end:
            close_group()
        group.append(run)
        end = start + len(run)
    close_group()
    return joined


class NfsFileWriter(FileWriter):
    """A file open on the server, written behind: contiguous writes are gathered into runs of
    up to ``_RUN`` bytes, each sent by one background call (libnfs pipelines its RPCs) while
    the next run fills, so a copy through a mount waits for the network once per run, not
    once per FUSE request. A small write arriving while nothing is in flight (a log line) is
    sent before ``write`` returns, so a job's stdout is followed live. ``flush`` sends what is
    left and COMMITs, only if anything was written since the last one.

    Nothing is lost silently: a run whose background write failed is kept and sent again by
    the next ``write``, ``read``, ``truncate`` or ``flush``, which raise while it still fails.
    The server acknowledges writes before they are on its disk: everything sent since the last
    COMMIT is kept and sent again when the COMMIT's verifier shows that the server restarted in
    between (:class:`WriteVerifier`); past ``_COMMIT_BEHIND`` a COMMIT goes on another
    connection while the writes go on, past ``_KEEP_UNCOMMITTED`` the writes wait for one.
    For ``_QUIET`` seconds after a failure every call fails at once with it, rather than each
    waiting out the server's timeout again: a job writing line by line to a server that went
    away got EIO after half a minute per line.
    """

    can_read: ClassVar[bool] = True

    def __init__(
        self,
        handle: NfsFile,
        where: str,
        behind: Executor,
        verifier: WriteVerifier,
        all_kept: KeptBytes,
        commit_elsewhere: Callable[[NfsFile], bytes],
    ):
        self._handle = handle
        self._where = where
        self._behind = behind
        self._verifier = verifier
        self._all_kept = all_kept
        self._commit_elsewhere = commit_elsewhere
        #: (``_kept`` and its sizes change in background writes and COMMITs too)
        self._kept_lock = threading.Lock()
        self._committing: Future[None] | None = None  # a COMMIT sent behind
        self._restart_seen = False  # by a COMMIT sent behind: the next write sends all again
        #: the verifier before the first write since the last COMMIT (None: nothing sent)
        self._epoch: bytes | None = None
        #: what was sent since the last COMMIT, in order: sent again if the server restarted
        self._kept: list[tuple[int, bytearray]] = []
        self._kept_bytes = 0
        self._small_kept = 0  # small runs kept since they were last joined
        self._lock = threading.Lock()  # writes come from FUSE threads, flushes from another
        self._start = 0  # the file offset of the run
        self._run = bytearray()
        self._sending: Future[None] | None = None
        #: runs written behind that failed (sent again first), and why
        self._failed: list[tuple[int, bytearray]] = []
        self._error: OSError | None = None
        self._quiet_until = 0.0  # (monotonic) until then, calls fail at once with _error
        self._unsynced = False  # written since the last COMMIT

    @contextlib.contextmanager
    def _call(self, *, wait: bool = True) -> Iterator[None]:
        """One call, holding the lock, its errors translated and remembered; after the run
        in flight unless ``wait`` is false (a write: the next run fills meanwhile)."""
        with self._lock, translate(self._where):
            if wait or (self._sending is not None and self._sending.done()):
                self._wait()
            if self._error is not None and time.monotonic() < self._quiet_until:
                raise self._error
            try:
                yield
            except OSError as e:
                self._error, self._quiet_until = e, time.monotonic() + _QUIET
                raise

    def write(self, offset: int, data: bytes | memoryview) -> None:
        with self._call(wait=False):
            if self._sending is None:
                self._resend_failed()
            if self._run and (
                offset != self._start + len(self._run) or len(self._run) + len(data) > _RUN
            ):
                self._send_behind()
            if not self._run:
                self._start = offset
            self._run += data
            if (
                self._kept_bytes >= _KEEP_UNCOMMITTED
                or self._restart_seen
                or (self._kept_bytes and self._all_kept.total >= _KEEP_ALL)
            ):
                self._resend_failed()
                self._commit()  # what is kept to send again stays bounded
            elif self._kept_bytes >= _COMMIT_BEHIND:
                self._commit_behind()
            if len(self._run) >= _RUN:
                self._send_behind()
            elif len(data) < _SMALL_WRITE and self._sending is None:
                self._send_now()

    def truncate(self, size: int) -> None:
        with self._call():
            self._drain()
            self._commit()  # nothing sent again after a restart may undo the truncation
            self._handle.truncate(size)

    def flush(self) -> None:
        with self._call():
            self._drain()
            self._commit()

    def publish(self) -> None:
        with self._call():
            self._drain()  # written is seen by every client; COMMIT is for the next flush

    def read(self, offset: int, length: int) -> bytes:
        with self._call():
            self._drain()
            return self._handle.pread(offset, length)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            with translate(self._where), contextlib.suppress(OSError):
                self._handle.close()
            with self._lock:
                self._wait()
                self._committed_behind()
                self._forget_kept()

    def discard(self) -> None:
        with self._lock:
            self._wait()
            self._committed_behind()
            self._run, self._failed, self._error = bytearray(), [], None
            self._forget_kept()
        with contextlib.suppress(OSError):
            self._handle.close()

    # -- called with the lock held ---------------------------------------------------------
    def _wait(self) -> None:
        """Wait for the run in flight (its failure is kept in ``_failed``, not raised)."""
        sending, self._sending = self._sending, None
        if sending is not None:
            sending.result()

    def _sending_from(self) -> None:
        """Note the epoch before the first write since the last COMMIT."""
        if self._epoch is None:
            self._epoch = self._verifier.known(self._handle)

    def _kept_for_restart(self, start: int, run: bytearray) -> None:
        self._all_kept.count(len(run))
        with self._kept_lock:
            self._kept.append((start, run))
            self._kept_bytes += len(run)
            self._unsynced = True
            if len(run) < _SMALL_WRITE:
                self._small_kept += 1
                if self._small_kept >= _SMALL_KEPT:
                    # a log's lines joined into a few buffers, not one object a line
                    # (growing one buffer line by line cost a copy of it at every reallocation)
                    self._kept, self._small_kept = joined_runs(self._kept), 0

    def _forget_kept(self) -> None:
        with self._kept_lock:
            self._all_kept.count(-self._kept_bytes)
            self._kept, self._kept_bytes, self._small_kept = [], 0, 0

    def _commit_behind(self) -> None:
        """Send a COMMIT of what is kept now on another connection, one at a time; the writes
        go on meanwhile (see ``_COMMIT_BEHIND``)."""
        if self._committing is not None and not self._committing.done():
            return
        self._committed_behind()
        with self._kept_lock:
            batch, size = self._kept, self._kept_bytes
            self._kept, self._kept_bytes, self._small_kept = [], 0, 0
        assert self._epoch is not None  # something was sent
        self._committing = self._behind.submit(self._commit_batch, batch, size, self._epoch)

    def _commit_batch(self, batch: list[tuple[int, bytearray]], size: int, epoch: bytes) -> None:
        """(In the background.) Let ``batch`` go if its COMMIT shows no restart since it was
        sent; else, or if it failed, it goes back in front of what is kept (sent before it),
        for the next COMMIT to send again."""
        failure: Exception | None = None
        try:
            durable = self._verifier.seen(self._commit_elsewhere(self._handle), epoch)
        except Exception as e:  # (an OSError, or no session could be made): all kept
            log.warning("committing %s behind failed (kept): %s", self._where, e)
            durable, failure = False, e
        if durable:
            self._all_kept.count(-size)
            return
        with self._kept_lock:
            self._kept[:0] = batch
            self._kept_bytes += size
            # a restart: the next write sends everything kept again (more COMMITs behind
            # would only show it again); a failure: the next COMMIT behind tries again
            self._restart_seen = self._restart_seen or failure is None

    def _committed_behind(self) -> None:
        """Wait for the COMMIT sent behind, if any."""
        committing, self._committing = self._committing, None
        if committing is not None:
            committing.result()

    def _commit(self) -> None:
        """COMMIT what was sent since the last one; if the server restarted meanwhile, send
        it again first (it may be gone) and COMMIT again."""
        self._committed_behind()
        if not self._unsynced or self._epoch is None:
            return
        for _ in range(_RESTARTS):
            if self._verifier.committed(self._handle, self._epoch):
                break
            log.warning(
                "%s: the NFS server restarted before a COMMIT: sending %d bytes again",
                self._where,
                self._kept_bytes,
            )
            restarted = self._verifier.known(self._handle)
            for start, run in self._kept:
                self._handle.pwrite(start, run)  # failing: raised, all kept for the next try
            self._epoch = restarted
        else:
            raise OSError(errno.EIO, f"{self._where}: the NFS server kept restarting")
        self._forget_kept()
        self._epoch, self._unsynced, self._restart_seen = None, False, False

    def _send_behind(self) -> None:
        self._resend_failed()  # the runs before go first: this one may write over them
        self._sending_from()
        start, run = self._start, self._run
        self._run = bytearray()
        self._sending = self._behind.submit(self._write_run, start, run)

    def _write_run(self, start: int, run: bytearray) -> None:
        """A background write: a failure is kept for the next call to send again and raise."""
        try:
            self._handle.pwrite(start, run)
        except OSError as e:
            log.warning("writing %s behind failed (kept, sent again): %s", self._where, e)
            self._failed.append((start, run))
            self._error, self._quiet_until = e, time.monotonic() + _QUIET
        else:
            self._kept_for_restart(start, run)

    def _send_now(self) -> None:
        """Send the run before returning; a failure keeps it for the next call."""
        self._wait()
        self._sending_from()
        start, run = self._start, self._run
        self._run = bytearray()
        try:
            self._handle.pwrite(start, run)
        except OSError:
            self._failed.append((start, run))
            raise
        self._kept_for_restart(start, run)

    def _resend_failed(self) -> None:
        self._wait()
        while self._failed:
            self._sending_from()
            start, run = self._failed[0]
            self._handle.pwrite(start, run)  # still failing: raised, kept
            self._failed.pop(0)
            self._kept_for_restart(start, run)
        self._error = None

    def _drain(self) -> None:
        """Everything written so far is on the server (not yet committed)."""
        self._resend_failed()
        if self._run:
            self._send_now()


class _NfsReader(FileReader):
    """Every range read from the one file handle opened."""

    def __init__(
        self, backend: NfsStorage, volume: str, path: str, info: FileInfo, handle: NfsFile
    ):
        super().__init__(backend, volume, path, info)
        self._handle: NfsFile | None = handle

    def read(self, offset: int, length: int) -> bytes:
        if self._handle is None:
            raise StorageError(f"{self._path} is closed", target=self._path)
        where = f"{self._volume}/{self._path}"
        with translate(where):
            try:
                return self._handle.pread(offset, length)
            except OSError as e:
                if e.errno in _REPLACED:  # NFS keeps no deleted file for other clients
                    raise NotFoundError(
                        f"{where} was replaced or deleted while being read", target=where
                    ) from e
                raise

    def close(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            with contextlib.suppress(OSError):
                handle.close()


def _modified(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)

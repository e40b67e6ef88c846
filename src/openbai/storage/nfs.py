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
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from openbai.errors import ConflictError, NotFoundError, SpecError, StorageError
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
from openbai.storage.nfs_errors import translate
from openbai.storage.nfs_writer import (
    CALL_BYTES,
    RESTARTS,
    KeptBytes,
    NfsFileWriter,
    WriteVerifier,
)

log = logging.getLogger("openbai.storage")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: sessions one backend opens at most (one per thread in flight)
_MAX_SESSIONS = 8
#: what a read of a file replaced meanwhile fails with (libnfs reports some as EFAULT)
_REPLACED = {errno.ESTALE, errno.EFAULT}
_REPLACED_RETRIES = 5


def server_of(options: Mapping[str, Any]) -> Server:
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
    def from_options(cls, account: str, kind: VolumeKind, options: Mapping[str, Any]) -> NfsStorage:
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
                for _ in range(RESTARTS):
                    epoch = self.verifier.known(target)
                    with open(source, "rb") as src:
                        offset = 0
                        while chunk := src.read(CALL_BYTES):
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
                    while data := f.pread(offset, CALL_BYTES):
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

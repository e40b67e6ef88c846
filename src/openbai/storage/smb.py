"""Azure Files over SMB 3: the file shares of an Azure storage account, or of a Samba stand-in.

Options of an ``azure`` account used here (the blob options are ignored):

- ``file_endpoint``: ``host[:port]`` or ``smb://host[:port]`` (SMB, port 445 by default), or
  the account's ``https://ACCOUNT.file.core.windows.net`` (SMB on 445 to that host, and shares
  managed through the File REST API). Default: the connection string's ``FileEndpoint``, else
  ``https://ACCOUNT.file.<EndpointSuffix or core.windows.net>``.
- ``account_name`` / ``account_key`` (or the ``connection_string``'s ``AccountName`` /
  ``AccountKey``): Azure Files' SMB user is the account name, its password the account key.
- ``samba_config``: for a local Samba stand-in (``scripts/services/samba.sh``), the path of its
  smb.conf: shares are created as registry shares with ``net`` (see ``samba_shares.py``).
- ``timeout`` (seconds to connect, default 30); ``retry_total`` (REST retries, default 4).

Files move over SMB (smbprotocol's ``smbclient``; bulk reads and writes pipelined in
``smb_io.py``; errors translated in ``smb_errors.py``). Creating, listing and deleting shares
goes to a *share admin* (``shares.py``: REST on Azure, ``net conf`` on Samba); without one the
account can still use existing shares.

- Uploads go to a hidden temporary name and are renamed over the target, so readers never see
  half a file and a stopped transfer leaves nothing visible; the source's mtime is kept, so
  tree transfers skip unchanged files by size and mtime.
- ``open_writer`` writes straight to the server: other clients see appended bytes while the
  file is still open (what streaming a running job's output needs).
- Paths cannot leave their share: they are checked by ``clean_path`` plus SMB's own rules
  (no ``: * ? " < > |``, so no alternate data streams), and the server refuses symlinks that
  lead out of the share.
- Nothing connects before the first call; the session is opened once and shared by threads.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat as stat_mode
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import smbclient  # type: ignore[import-untyped]
import smbclient.shutil  # type: ignore[import-untyped]
from smbprotocol.exceptions import SMBOSError  # type: ignore[import-untyped]
from smbprotocol.header import NtStatus  # type: ignore[import-untyped]

from openbai.errors import ConflictError, NotFoundError, SpecError, StorageError
from openbai.retry import retrying
from openbai.storage.atomic import PARTIAL_SUFFIX, atomic_target, is_partial_name
from openbai.storage.base import (
    FileInfo,
    FileWriter,
    StorageBackend,
    VolumeInfo,
    VolumeKind,
    clean_path,
)
from openbai.storage.names import check_volume_name
from openbai.storage.shares import ShareAdmin, share_admin_for
from openbai.storage.smb_errors import translate
from openbai.storage.smb_io import SmbFileWriter, copy_to, file_blocks, read_range, write_blocks

SMB_PORT = 445
_AZURE_FILE_SUFFIX = "core.windows.net"
#: characters SMB (and Azure Files) refuse in names; ':' would name an alternate data stream
_FORBIDDEN = frozenset(':*?"<>|') | {chr(c) for c in range(32)}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: seconds a replacing rename waits for readers to close the target
_REPLACE_PATIENCE = 5.0


# -- options ---------------------------------------------------------------------------------
def parse_connection_string(text: str) -> dict[str, str]:
    """``Key=Value;...`` of an Azure storage connection string (values may contain ``=``)."""
    pairs = (part.partition("=") for part in text.split(";") if part.strip())
    return {key.strip(): value.strip() for key, sep, value in pairs if sep}


def parse_file_endpoint(text: str) -> tuple[str, int, str | None]:
    """``(host, smb port, REST endpoint or None)`` of a ``file_endpoint`` option."""
    raw = text.strip()
    url = urlsplit(raw if "://" in raw else f"smb://{raw}")
    if url.scheme not in ("smb", "https", "http") or not url.hostname:
        raise SpecError(
            f"file_endpoint must be host[:port], smb://host[:port] or the https file endpoint,"
            f" got {text!r}",
            target="file_endpoint",
        )
    try:
        port = url.port
    except ValueError as e:
        raise SpecError(f"file_endpoint has a bad port: {text!r}", target="file_endpoint") from e
    if url.scheme == "smb":
        return url.hostname, port or SMB_PORT, None
    return url.hostname, SMB_PORT, f"{url.scheme}://{url.netloc}"


class SmbStorage(StorageBackend):
    """The file shares of one account, reached over SMB 3."""

    name: ClassVar[str] = "smb"
    shows_appends_live: ClassVar[bool] = True
    supports_writer: ClassVar[bool] = True

    def __init__(
        self,
        host: str,
        *,
        username: str,
        password: str,
        port: int = SMB_PORT,
        shares: ShareAdmin | None = None,
        timeout: float = 30,
    ):
        self.host = host
        self.port = port
        self.username = username
        self.shares = shares
        self.timeout = timeout
        self._password = password
        self._connections: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._connected = False

    @classmethod
    def from_options(cls, account: str, kind: VolumeKind, options: Mapping[str, Any]) -> SmbStorage:
        if kind is not VolumeKind.FILE:
            raise SpecError(f"smb serves file shares, not {kind} volumes", target="kind")
        conn = parse_connection_string(str(options.get("connection_string") or ""))
        account_name = str(options.get("account_name") or conn.get("AccountName") or account)
        account_key = str(options.get("account_key") or conn.get("AccountKey") or "")
        if not account_key:
            raise SpecError(
                "file shares need the account key ('account_key' or a connection string)",
                target="account_key",
            )
        suffix = conn.get("EndpointSuffix") or _AZURE_FILE_SUFFIX
        endpoint = str(
            options.get("file_endpoint")
            or conn.get("FileEndpoint")
            or f"https://{account_name}.file.{suffix}"
        )
        host, port, rest = parse_file_endpoint(endpoint)
        return cls(
            host,
            port=port,
            username=account_name,
            password=account_key,
            shares=share_admin_for(options, rest, account_name, account_key),
            timeout=float(options.get("timeout", 30)),
        )

    # -- connection ----------------------------------------------------------------------
    def _kw(self) -> dict[str, Any]:
        """smbclient's keyword arguments: our credentials and our own connection pool."""
        if not self._connected:
            with self._lock, translate(f"{self.host}:{self.port}"):
                if not self._connected:
                    smbclient.register_session(self.host, **self._session_kw())
                    self._connected = True
        return self._session_kw()

    def _session_kw(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "password": self._password,
            "port": self.port,
            "connection_timeout": self.timeout,
            "connection_cache": self._connections,
        }

    def close(self) -> None:
        """Close the SMB connection (it is opened again if the backend is used again)."""
        with self._lock:
            smbclient.reset_connection_cache(
                fail_on_error=False, connection_cache=self._connections
            )
            self._connected = False

    def _unc(self, volume: str, path: str = "") -> str:
        check_volume_name(volume)
        tail = "\\" + path.replace("/", "\\") if path else ""
        return f"\\\\{self.host}\\{volume}{tail}"

    # -- volumes -------------------------------------------------------------------------
    def _admin(self) -> ShareAdmin:
        if self.shares is None:
            raise StorageError(
                f"{self.host}: no way to manage shares: use the https file endpoint of an Azure"
                " account, or 'samba_config' for a local Samba",
                target="file_endpoint",
            )
        return self.shares

    def list_volumes(self) -> list[VolumeInfo]:
        names = self._admin().list_shares()
        return [VolumeInfo(n, VolumeKind.FILE) for n in names if _is_volume_name(n)]

    def create_volume(self, volume: str) -> VolumeInfo:
        check_volume_name(volume)
        self._admin().create_share(volume)
        self._forget_share(volume)  # a share of that name deleted earlier
        return VolumeInfo(volume, VolumeKind.FILE)

    def delete_volume(self, volume: str) -> None:
        check_volume_name(volume)
        self._forget_share(volume)
        self._admin().delete_share(volume)

    def _forget_share(self, volume: str) -> None:
        """Drop our tree connects to the share: one of a re-created share would be stale."""
        unc = self._unc(volume).lower()
        for connection in list(self._connections.values()):
            for session in list(connection.session_table.values()):
                for tid, tree in list(session.tree_connect_table.items()):
                    if str(tree.share_name).lower() == unc:
                        with contextlib.suppress(Exception):
                            tree.disconnect()
                        session.tree_connect_table.pop(tid, None)

    def volume_exists(self, volume: str) -> bool:
        """Asked of the SMB server itself: needs no share admin."""
        try:
            self.stat(volume, "")
        except NotFoundError:
            return False
        return True

    # -- files ---------------------------------------------------------------------------
    def stat(self, volume: str, path: str) -> FileInfo:
        cleaned = _clean(path)
        unc = self._unc(volume, cleaned)
        with translate(f"{volume}/{cleaned}"):
            st = smbclient.stat(unc, **self._kw())
        return _stat_info(cleaned, st)

    def list_dir(
        self, volume: str, path: str = "", *, recursive: bool = False
    ) -> Iterator[FileInfo]:
        cleaned = _clean(path)
        top = self.stat(volume, cleaned)
        if not top.is_dir:
            where = f"{volume}/{cleaned}"
            raise NotFoundError(f"{where}: not a directory", target=where)
        pending = [cleaned]
        while pending:
            directory = pending.pop()
            for info in self._scan(volume, directory):
                if info.is_dir and recursive:
                    pending.append(info.path)
                elif not recursive or not info.is_dir:
                    yield info

    def _scan(self, volume: str, directory: str) -> list[FileInfo]:
        """One directory's entries (sorted, partial uploads left out)."""
        found = []
        with translate(f"{volume}/{directory}"):
            with smbclient.scandir(self._unc(volume, directory), **self._kw()) as entries:
                for entry in entries:
                    if is_partial_name(entry.name):
                        continue
                    rel = f"{directory}/{entry.name}" if directory else entry.name
                    found.append(_entry_info(rel, entry))
        return sorted(found, key=lambda i: i.path)

    def read(self, volume: str, path: str, offset: int = 0, length: int | None = None) -> bytes:
        cleaned = _clean(path, allow_root=False)
        unc = self._unc(volume, cleaned)
        with translate(f"{volume}/{cleaned}"):
            with smbclient.open_file(unc, "rb", buffering=0, share_access="rwd", **self._kw()) as f:
                return read_range(f, offset, length)

    def upload(self, volume: str, path: str, source: Path) -> FileInfo:
        cleaned = _clean(path, allow_root=False)
        where = f"{volume}/{cleaned}"
        parent, _, name = cleaned.rpartition("/")
        tmp = f"{parent}/.{name[:100]}.{os.urandom(6).hex()}{PARTIAL_SUFFIX}".lstrip("/")
        kw = self._kw()
        with translate(where):
            st = source.stat()
            if not os.path.isfile(source):
                raise IsADirectoryError(errno.EISDIR, "not a file", str(source))
            if parent:
                smbclient.makedirs(self._unc(volume, parent), exist_ok=True, **kw)
            try:
                with smbclient.open_file(self._unc(volume, tmp), "wb", buffering=0, **kw) as f:
                    with open(source, "rb") as src:
                        write_blocks(f, file_blocks(src, f))
                smbclient.utime(self._unc(volume, tmp), ns=(st.st_atime_ns, st.st_mtime_ns), **kw)
                self._replace(self._unc(volume, tmp), self._unc(volume, cleaned), kw)
            except BaseException:
                with contextlib.suppress(Exception):
                    smbclient.remove(self._unc(volume, tmp), **kw)
                raise
        return FileInfo(cleaned, False, st.st_size, _modified(st.st_mtime_ns))

    def download(self, volume: str, path: str, target: Path) -> None:
        cleaned = _clean(path, allow_root=False)
        unc = self._unc(volume, cleaned)
        with translate(f"{volume}/{cleaned}"):
            with smbclient.open_file(unc, "rb", buffering=0, share_access="rwd", **self._kw()) as f:
                with atomic_target(target) as tmp, open(tmp, "wb") as out:
                    copy_to(f, out)

    def delete(self, volume: str, path: str) -> None:
        cleaned = _clean(path, allow_root=False)
        unc = self._unc(volume, cleaned)
        info = self.stat(volume, cleaned)
        with translate(f"{volume}/{cleaned}"):
            if info.is_dir:
                smbclient.shutil.rmtree(unc, **self._kw())
            else:
                smbclient.remove(unc, **self._kw())

    def make_dir(self, volume: str, path: str) -> None:
        cleaned = _clean(path)
        with translate(f"{volume}/{cleaned}"):
            if not cleaned:
                smbclient.stat(self._unc(volume), **self._kw())
                return
            smbclient.makedirs(self._unc(volume, cleaned), exist_ok=True, **self._kw())
        if not self.stat(volume, cleaned).is_dir:
            where = f"{volume}/{cleaned}"
            raise ConflictError(f"{where}: a file is in the way", target=where)

    @staticmethod
    def _replace(source: str, target: str, kw: dict[str, Any]) -> None:
        """Rename over ``target``, waiting while a reader has it open.

        SMB, like Windows, refuses to replace a file another client holds open
        (STATUS_ACCESS_DENIED / SHARING_VIOLATION); readers hold files briefly, so retry.
        """
        for attempt in retrying(
            retry_on=_held_open, within=_REPLACE_PATIENCE, first_wait=0.005, max_wait=0.1
        ):
            with attempt:
                smbclient.replace(source, target, **kw)

    # -- in-place writing (mounts) -------------------------------------------------------
    def open_writer(self, volume: str, path: str, *, truncate: bool = False) -> FileWriter:
        cleaned = _clean(path, allow_root=False)
        where = f"{volume}/{cleaned}"
        parent = cleaned.rpartition("/")[0]
        kw = self._kw()
        with translate(where):
            if parent:
                smbclient.makedirs(self._unc(volume, parent), exist_ok=True, **kw)
            handle = smbclient.open_file(
                self._unc(volume, cleaned),
                "wb" if truncate else "ab",
                buffering=0,
                share_access="rwd",
                **kw,
            )
        return SmbFileWriter(handle, where)

    def rename(self, volume: str, source: str, target: str) -> None:
        src = _clean(source, field="source", allow_root=False)
        dst = _clean(target, field="target", allow_root=False)
        parent = dst.rpartition("/")[0]
        kw = self._kw()
        with translate(f"{volume}/{src}"):
            if parent:
                smbclient.makedirs(self._unc(volume, parent), exist_ok=True, **kw)
            self._replace(self._unc(volume, src), self._unc(volume, dst), kw)


# -- helpers -----------------------------------------------------------------------------
def _held_open(e: BaseException) -> bool:
    """Whether a rename failed because another client holds the target open."""
    return isinstance(e, SMBOSError) and e.ntstatus in (
        NtStatus.STATUS_ACCESS_DENIED,
        NtStatus.STATUS_SHARING_VIOLATION,
    )


def _clean(path: str, *, field: str = "path", allow_root: bool = True) -> str:
    cleaned = clean_path(path, field=field, allow_root=allow_root)
    bad = sorted({c for c in cleaned if c in _FORBIDDEN})
    if bad:
        raise SpecError(
            f"{field} must not contain {' '.join(repr(c) for c in bad)} on a file share: {path!r}",
            target=field,
        )
    return cleaned


def _modified(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)


def _stat_info(path: str, st: Any) -> FileInfo:
    if stat_mode.S_ISDIR(st.st_mode):
        return FileInfo(path=path, is_dir=True, modified=_modified(st.st_mtime_ns))
    return FileInfo(path=path, is_dir=False, size=st.st_size, modified=_modified(st.st_mtime_ns))


def _entry_info(path: str, entry: Any) -> FileInfo:
    info = entry.smb_info
    modified = info.last_write_time
    if isinstance(modified, datetime) and modified.tzinfo is None:
        modified = modified.replace(tzinfo=UTC)
    if entry.is_dir():
        return FileInfo(path=path, is_dir=True, modified=modified)
    return FileInfo(path=path, is_dir=False, size=int(info.end_of_file), modified=modified)


def _is_volume_name(name: str) -> bool:
    try:
        check_volume_name(name)
    except SpecError:
        return False
    return True

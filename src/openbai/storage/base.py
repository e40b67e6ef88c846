"""The storage interface: the volumes (blob containers or file shares) of one storage account.

A storage account holds two kinds of volumes, blob containers and file shares. Each kind is
served by one :class:`StorageBackend` (for an embedded account both are directories; for an
Azure account containers speak Blob REST and shares speak SMB 3). Backends implement only the
primitives below; tree transfers, walking and following a growing file are written once on
top of them (``transfer.py``, ``follow.py``).

Paths inside a volume are ``/``-separated and relative (``data/train/0.png``); ``""`` is the
root. They are checked by :func:`clean_path` before any backend sees them, so a user path can
never leave its volume. Layers above the backends check with :func:`blob_path`, which keeps
empty segments (a blob may be named ``x//y.txt``); file-system backends then drop them.
"""

from __future__ import annotations

import posixpath
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from openbai.errors import SpecError


class VolumeKind(StrEnum):
    BLOB = "blob"
    FILE = "file"


class VolumeInfo(NamedTuple):
    name: str
    kind: VolumeKind


class FileInfo(NamedTuple):
    """One entry of a volume. ``md5`` is the content MD5 (hex) when the backend knows it."""

    path: str
    is_dir: bool
    size: int = 0
    modified: datetime | None = None
    md5: str | None = None

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)


def clean_path(
    path: str, *, field: str = "path", allow_root: bool = True, keep_empty: bool = False
) -> str:
    """Normalise a user-given path inside a volume; refuse anything that could escape it.

    ``keep_empty`` keeps empty segments inside the path (``x//y.txt``): a blob's name is a
    string, not a file-system path, and ``x//y.txt`` is another blob than ``x/y.txt``.
    Trailing slashes go either way (``logs/`` is the directory ``logs``).
    """
    if "\\" in path or "\x00" in path:
        raise SpecError(
            f"{field} must not contain backslashes or NUL bytes: {path!r}", target=field
        )
    if path.startswith("/"):
        raise SpecError(f"{field} must be relative, not absolute: {path!r}", target=field)
    if keep_empty:
        parts = [p for p in path.rstrip("/").split("/") if p != "."]
    else:
        parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise SpecError(f"{field} must not contain '..': {path!r}", target=field)
    cleaned = "/".join(parts)
    if cleaned.startswith("/"):  # "./" dropped before an empty segment: "/x" would remain
        raise SpecError(f"{field} must be relative, not absolute: {path!r}", target=field)
    if not cleaned and not allow_root:
        raise SpecError(f"{field} must not be empty", target=field)
    return cleaned


def blob_path(path: str, *, field: str = "path", allow_root: bool = True) -> str:
    """:func:`clean_path` for a path that may name a blob: empty segments are kept."""
    return clean_path(path, field=field, allow_root=allow_root, keep_empty=True)


class FileWriter(ABC):
    """A file being written in place (through a mount): bytes at offsets, published on flush.

    What was written becomes visible to readers of the volume at ``flush`` (and ``close``);
    backends that can show appends earlier may. ``flush`` raises ``StorageError`` when the
    data could not be made durable, so a mount can fail the job loudly.
    """

    @abstractmethod
    def write(self, offset: int, data: bytes | memoryview) -> None:
        """Write ``data`` at ``offset``. A mount passes a view of the kernel's buffer, valid
        during the call only: bytes kept for later are copied."""

    @abstractmethod
    def truncate(self, size: int) -> None: ...

    @abstractmethod
    def flush(self) -> None: ...

    def publish(self) -> None:
        """Make what was written visible to readers of the volume, not waiting for it to be
        durable: what a mount does every few seconds while a file is being written. Where
        ``flush`` makes the server write the file to its disk (NFS COMMIT, SMB FLUSH), the
        writer and every write after it would wait for that; here it is left to the next
        ``flush``. Backends that show nothing before a flush: ``flush``."""
        self.flush()

    @abstractmethod
    def close(self) -> None:
        """Flush, then release the file."""

    #: ``read`` returns what was written, flushed or not (else a mount flushes, then reads
    #: through the backend)
    can_read: ClassVar[bool] = False

    def read(self, offset: int, length: int) -> bytes:
        """Bytes ``[offset, offset+length)`` of the file as written so far."""
        raise NotImplementedError(f"{type(self).__name__} cannot read back")

    def discard(self) -> None:
        """Release the file without publishing more (its path was deleted meanwhile).

        Backends that publish every write as it happens have nothing to hold back: close.
        """
        self.close()


class FileReader:
    """One file opened for reading: its entry as opened, and its bytes.

    A backend with file handles (embedded accounts) reads every byte from the one file it
    opened, so a file replaced or deleted meanwhile still reads whole, as it was. This
    default reads each range by path (Azure blobs, SMB shares): ranges may come from
    different versions of a file rewritten in between.
    """

    def __init__(self, backend: StorageBackend, volume: str, path: str, info: FileInfo):
        self.info = info
        self._backend = backend
        self._volume = volume
        self._path = path

    def read(self, offset: int, length: int) -> bytes:
        """Bytes ``[offset, offset+length)`` (fewer at the end of the file)."""
        return self._backend.read(self._volume, self._path, offset, length)

    def close(self) -> None:
        """Release the file (a no-op where nothing is held)."""

    def stream(self, start: int, end: int, chunk: int) -> Iterator[bytes]:
        """Bytes ``[start, end)`` in pieces of at most ``chunk``; closes the reader when done,
        failed or dropped (a client that went away)."""
        try:
            position = start
            while position < end:
                data = self.read(position, min(chunk, end - position))
                if not data:
                    return
                position += len(data)
                yield data
        finally:
            self.close()

    def __enter__(self) -> FileReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StorageBackend(ABC):
    """The volumes of one kind (containers or shares) in one storage account.

    Constructors do no I/O. Every method raises only errors of :mod:`openbai.errors`
    (``NotFoundError`` for a missing volume or path, ``ConflictError`` for an existing
    volume, ``StorageError`` and subclasses for the rest).
    """

    #: registry key (``local``, ``azure_blob``, ``smb``)
    name: ClassVar[str]
    #: data appended to an open file is visible to readers before it is closed
    shows_appends_live: ClassVar[bool] = True
    #: send a checksum of each piece uploaded for the store to check (az's
    #: ``--validate-content``); backends that hash for the wire honour it, the others need not
    validate_content: bool = False

    @classmethod
    @abstractmethod
    def from_options(
        cls, account: str, kind: VolumeKind, options: Mapping[str, Any]
    ) -> StorageBackend:
        """Build the backend from an account's stored options (endpoints, keys, root dir)."""

    @classmethod
    def check_options(cls, account: str, options: Mapping[str, Any]) -> None:
        """Refuse, when the account is made, options no use of it could work with: a
        SpecError naming the option (never its value, which may be a secret). No I/O."""
        return None

    @classmethod
    def provision_account(cls, account: str, storage_root: Path) -> dict[str, Any]:
        """Make what a new account needs on this machine; the options it adds (an embedded
        account: where its tree lives). A remote store needs nothing."""
        return {}

    @classmethod
    def remove_account(cls, account: str, options: dict[str, Any]) -> None:
        """Remove what the account kept on this machine (its files, for an embedded one)."""
        return None

    # -- volumes -------------------------------------------------------------------------
    @abstractmethod
    def list_volumes(self) -> list[VolumeInfo]: ...

    @abstractmethod
    def create_volume(self, volume: str) -> VolumeInfo:
        """Create a volume; ``ConflictError`` if it exists."""

    @abstractmethod
    def delete_volume(self, volume: str) -> None: ...

    def volume_exists(self, volume: str) -> bool:
        return any(v.name == volume for v in self.list_volumes())

    # -- files ---------------------------------------------------------------------------
    @abstractmethod
    def stat(self, volume: str, path: str) -> FileInfo:
        """The entry at ``path`` (file or directory); ``NotFoundError`` if absent."""

    @abstractmethod
    def list_dir(
        self, volume: str, path: str = "", *, recursive: bool = False
    ) -> Iterator[FileInfo]:
        """Entries under the directory ``path``: one level, or every file when recursive."""

    @abstractmethod
    def read(self, volume: str, path: str, offset: int = 0, length: int | None = None) -> bytes:
        """Bytes ``[offset, offset+length)`` of a file (to its end when length is None)."""

    def read_into(self, volume: str, path: str, offset: int, into: memoryview) -> int:
        """Read up to ``len(into)`` bytes from ``offset`` into ``into``; how many (fewer at
        the end). A backend that can receive straight into the buffer overrides this copy."""
        data = self.read(volume, path, offset, len(into))
        into[: len(data)] = data
        return len(data)

    def open_file(self, volume: str, path: str) -> FileReader:
        """Open the entry at ``path`` for reading; ``info.is_dir`` tells a directory (which
        cannot be read). Backends with file handles read every byte from the file opened here.
        """
        return FileReader(self, volume, path, self.stat(volume, path))

    @abstractmethod
    def upload(self, volume: str, path: str, source: Path) -> FileInfo:
        """Store the local file ``source`` at ``path`` (replacing it), parents included."""

    @abstractmethod
    def download(self, volume: str, path: str, target: Path) -> None:
        """Write the file at ``path`` to the local file ``target``."""

    @abstractmethod
    def delete(self, volume: str, path: str) -> None:
        """Delete a file, or a directory with everything under it."""

    @abstractmethod
    def make_dir(self, volume: str, path: str) -> None:
        """Create a directory and its parents (a no-op where directories are virtual)."""

    #: the backend can write files in place (``open_writer``) and rename them, as mounts need
    supports_writer: ClassVar[bool] = False

    def open_writer(self, volume: str, path: str, *, truncate: bool = False) -> FileWriter:
        """Open ``path`` for writing at offsets, creating it if needed (mount support)."""
        raise NotImplementedError(f"{type(self).__name__} cannot write files in place")

    def rename(self, volume: str, source: str, target: str) -> None:
        """Move a file to a new path in the same volume, replacing ``target`` (mount support)."""
        raise NotImplementedError(f"{type(self).__name__} cannot rename files")

    def local_path(self, volume: str, path: str = "") -> Path | None:
        """The directory holding the volume on this machine, if it is one (embedded accounts).

        Mounts use it to link the volume into a job instead of going through a protocol.
        """
        return None

"""The embedded storage backend: an account is a directory tree on this machine.

Layout: ``ROOT/<account>/<kind>/<volume>/<path>`` with ``ROOT`` from the account options
(``{"root": "/srv/openbai/storage"}``). A volume is a directory and :meth:`local_path` hands
it to mounts, which link it into jobs.

- Writes are atomic (temporary file, fsync, rename): a reader never sees half an upload.
  Tree transfers sync once at the end instead of once per file (``atomic.deferred_sync``).
- ``upload`` keeps the source's modification time and permission bits (like ``cp -p``), so
  tree transfers can skip unchanged files by size and mtime; the backend stores no MD5.
- Every path must stay inside its volume after symlinks are resolved: a symlink pointing
  outside is refused (``PermissionDeniedError``) by stat/read/download and skipped by
  listings.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat as stat_mode
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from openbai.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    SpecError,
    StorageError,
)
from openbai.storage.atomic import atomic_target, is_partial_name
from openbai.storage.base import FileInfo, StorageBackend, VolumeInfo, VolumeKind, clean_path
from openbai.storage.names import check_volume_name

_COPY_CHUNK = 1024 * 1024


@contextlib.contextmanager
def _translate(volume: str, path: str = "") -> Iterator[None]:
    """Turn OSErrors into openbai storage errors naming ``volume/path``."""
    where = f"{volume}/{path}" if path else volume
    try:
        yield
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as e:
        raise NotFoundError(f"{where}: no such file or directory", target=where) from e
    except FileExistsError as e:
        raise ConflictError(f"{where}: already exists", target=where) from e
    except PermissionError as e:
        raise PermissionDeniedError(f"{where}: permission denied", target=where) from e
    except OSError as e:
        raise StorageError(f"{where}: {e.strerror or e}", target=where) from e


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _modified(st: os.stat_result) -> datetime:
    return _EPOCH + timedelta(microseconds=st.st_mtime_ns // 1000)


def stat_info(path: str, st: os.stat_result) -> FileInfo:
    """The entry for a local file or directory; mtime truncated to the microsecond."""
    if stat_mode.S_ISDIR(st.st_mode):
        return FileInfo(path=path, is_dir=True, modified=_modified(st))
    return FileInfo(path=path, is_dir=False, size=st.st_size, modified=_modified(st))


class LocalStorage(StorageBackend):
    """Volumes of one kind of an embedded account, as directories under ``base``."""

    name: ClassVar[str] = "local"
    shows_appends_live: ClassVar[bool] = True

    def __init__(self, base: Path, kind: VolumeKind):
        self.base = base
        self.kind = kind

    @classmethod
    def from_options(cls, account: str, kind: VolumeKind, options: dict[str, Any]) -> LocalStorage:
        root = options.get("root")
        if not root:
            raise SpecError("a local storage account needs the option 'root'", target="root")
        account = clean_path(account, field="account", allow_root=False)
        if "/" in account:
            raise SpecError(f"account must be one path segment: {account!r}", target="account")
        return cls(Path(root) / account / kind.value, kind)

    # -- paths ---------------------------------------------------------------------------
    def _volume_dir(self, volume: str) -> Path:
        directory = self.base / check_volume_name(volume)
        if not directory.is_dir():
            raise NotFoundError(f"volume {volume!r} does not exist", target=volume)
        return directory

    def _inside(self, volume: str, path: str, full: Path) -> Path:
        """``full`` with symlinks resolved; refused unless it stays inside the volume."""
        root = self._volume_dir(volume).resolve()
        real = full.resolve()
        if real != root and not real.is_relative_to(root):
            where = f"{volume}/{path}"
            raise PermissionDeniedError(f"{where}: leads outside the volume", target=where)
        return real

    def _resolve(self, volume: str, path: str) -> tuple[str, Path]:
        cleaned = clean_path(path)
        return cleaned, self._inside(volume, cleaned, self._volume_dir(volume) / cleaned)

    def _visible_info(self, volume: str, rel: str, entry: Path) -> FileInfo | None:
        """A listing entry, or None for partial uploads, escaping symlinks, vanished files."""
        if is_partial_name(entry.name):
            return None
        try:
            if entry.is_symlink():
                self._inside(volume, rel, entry)
            return stat_info(rel, entry.stat())
        except (PermissionDeniedError, FileNotFoundError):
            return None

    # -- volumes -------------------------------------------------------------------------
    def list_volumes(self) -> list[VolumeInfo]:
        with _translate(str(self.base)):
            if not self.base.is_dir():
                return []
            names = sorted(p.name for p in self.base.iterdir() if p.is_dir())
        return [VolumeInfo(name, self.kind) for name in names if _is_volume_name(name)]

    def create_volume(self, volume: str) -> VolumeInfo:
        check_volume_name(volume)
        with _translate(volume):
            self.base.mkdir(parents=True, exist_ok=True)
            (self.base / volume).mkdir()
        return VolumeInfo(volume, self.kind)

    def delete_volume(self, volume: str) -> None:
        directory = self._volume_dir(volume)
        with _translate(volume):
            shutil.rmtree(directory)

    # -- files ---------------------------------------------------------------------------
    def stat(self, volume: str, path: str) -> FileInfo:
        cleaned, real = self._resolve(volume, path)
        with _translate(volume, cleaned):
            return stat_info(cleaned, real.stat())

    def list_dir(
        self, volume: str, path: str = "", *, recursive: bool = False
    ) -> Iterator[FileInfo]:
        cleaned, real = self._resolve(volume, path)
        with _translate(volume, cleaned):
            if not real.is_dir():
                raise NotADirectoryError(cleaned)
            if recursive:
                yield from self._walk(volume, cleaned, real)
                return
            for entry in sorted(real.iterdir()):
                rel = f"{cleaned}/{entry.name}" if cleaned else entry.name
                info = self._visible_info(volume, rel, entry)
                if info is not None:
                    yield info

    def _walk(self, volume: str, prefix: str, top: Path) -> Iterator[FileInfo]:
        for directory, dirs, files in os.walk(top, onerror=_raise):
            dirs.sort()
            here = Path(directory)
            rel_dir = here.relative_to(top).as_posix()
            base = "/".join(p for p in (prefix, rel_dir) if p not in ("", "."))
            for name in sorted(files):
                info = self._visible_info(volume, f"{base}/{name}" if base else name, here / name)
                if info is not None:
                    yield info

    def read(self, volume: str, path: str, offset: int = 0, length: int | None = None) -> bytes:
        cleaned, real = self._resolve(volume, path)
        with _translate(volume, cleaned), open(real, "rb") as f:
            f.seek(offset)
            return f.read() if length is None else f.read(length)

    def upload(self, volume: str, path: str, source: Path) -> FileInfo:
        cleaned = clean_path(path, allow_root=False)
        _, real = self._resolve(volume, cleaned)
        with _translate(str(source)):
            src = source.stat()
            if not stat_mode.S_ISREG(src.st_mode):
                raise IsADirectoryError(str(source))
        with _translate(volume, cleaned):
            if real.is_dir():
                raise FileExistsError(cleaned)
            with atomic_target(real, mode=stat_mode.S_IMODE(src.st_mode)) as tmp:
                shutil.copyfile(source, tmp)
                os.utime(tmp, ns=(src.st_atime_ns, src.st_mtime_ns))
            return stat_info(cleaned, real.stat())

    def download(self, volume: str, path: str, target: Path) -> None:
        cleaned, real = self._resolve(volume, path)
        with _translate(volume, cleaned):
            if real.is_dir():
                raise IsADirectoryError(cleaned)
            with atomic_target(target) as tmp:
                shutil.copyfile(real, tmp)

    def delete(self, volume: str, path: str) -> None:
        cleaned = clean_path(path, allow_root=False)
        root = self._volume_dir(volume)
        entry = root / cleaned
        self._inside(volume, cleaned, entry.parent)
        with _translate(volume, cleaned):
            if entry.is_symlink() or not entry.is_dir():
                entry.unlink()
            else:
                shutil.rmtree(entry)

    def make_dir(self, volume: str, path: str) -> None:
        cleaned, real = self._resolve(volume, path)
        with _translate(volume, cleaned):
            if real.exists() and not real.is_dir():
                raise FileExistsError(cleaned)
            real.mkdir(parents=True, exist_ok=True)

    def local_path(self, volume: str, path: str = "") -> Path | None:
        return self._resolve(volume, path)[1]


def _raise(error: OSError) -> None:
    raise error


def _is_volume_name(name: str) -> bool:
    """Whether a directory under the account is a volume (stray directories are not)."""
    try:
        check_volume_name(name)
    except SpecError:
        return False
    return True

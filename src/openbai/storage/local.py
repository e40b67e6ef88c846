"""The embedded storage backend: an account is a directory tree on this machine.

Layout: ``ROOT/<account>/<kind>/<volume>/<path>`` with ``ROOT`` from the account options
(``{"root": "/srv/openbai/storage"}``). A volume is a directory and :meth:`local_path` hands
it to mounts, which link it into jobs.

- Writes are atomic (temporary file, fsync, rename): a reader never sees half an upload.
  Tree transfers sync once at the end instead of once per file (``atomic.deferred_sync``).
- ``upload`` keeps the source's modification time and permission bits (like ``cp -p``), so
  tree transfers can skip unchanged files by size and mtime; the backend stores no MD5.
- Reads never follow a symlink: a job writes its outputs into the volume, and a job that
  swaps a folder for a link to ``/etc`` between a check and an open must get nothing. Every
  read (stat, listing, read, download) walks its path from the volume's directory one
  segment at a time through ``O_NOFOLLOW`` descriptors (what ``openat2``'s
  ``RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS`` would do, portably), and reads every byte from the
  one descriptor it opened. A symlink is refused (``PermissionDeniedError``) and left out of
  listings, as are FIFOs, sockets and devices: Azure storage has none of them either.
- Writes (upload, make_dir) resolve the path and refuse one that leads out of the volume.
  Tree transfers (upload-batch, download-batch) go through ``local_tree.py``, which opens
  each folder once through the same ``O_NOFOLLOW`` descriptors: 10,000 small files cost
  about what ``cp -r`` costs, not one path resolution and two fsyncs each.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat as stat_mode
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, NoReturn

from openbai.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    SpecError,
    StorageError,
)
from openbai.folders import FOLDER_FLAGS, descend
from openbai.storage.atomic import PARTIAL_SUFFIX, atomic_target, is_partial_name
from openbai.storage.base import (
    FileInfo,
    FileReader,
    StorageBackend,
    VolumeInfo,
    VolumeKind,
    clean_path,
)
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
        if e.errno == errno.ENAMETOOLONG:  # the name asked for, not the store, is at fault
            raise SpecError(
                f"{where}: a name in it is too long (255 bytes at most)", target="path"
            ) from e
        raise StorageError(f"{where}: {e.strerror or e}", target=where) from e


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: the entry itself (a file or a folder); O_NONBLOCK so that a job's FIFO cannot hang a reader
_ENTRY_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY


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
    def from_options(
        cls, account: str, kind: VolumeKind, options: Mapping[str, Any]
    ) -> LocalStorage:
        root = options.get("root")
        if not root:
            raise SpecError("a local storage account needs the option 'root'", target="root")
        account = clean_path(account, field="account", allow_root=False)
        if "/" in account:
            raise SpecError(f"account must be one path segment: {account!r}", target="account")
        return cls(Path(root) / account / kind.value, kind)

    @classmethod
    def check_options(cls, account: str, options: Mapping[str, Any]) -> None:
        given = sorted(
            k for k in ("connection_string", "account_key", "sas_token") if options.get(k)
        )
        if given:
            raise SpecError(
                f"an embedded account takes no credentials, not options.{given[0]};"
                " an Azure account is --kind azure",
                target=f"options.{given[0]}",
            )

    @classmethod
    def provision_account(cls, account: str, storage_root: Path) -> dict[str, Any]:
        for kind in VolumeKind:
            (storage_root / account / kind.value).mkdir(parents=True, exist_ok=True)
        return {"root": str(storage_root)}

    @classmethod
    def remove_account(cls, account: str, options: dict[str, Any]) -> None:
        shutil.rmtree(Path(options["root"]) / account, ignore_errors=True)

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

    def _open_volume(self, volume: str) -> int:
        directory = self.base / check_volume_name(volume)
        try:
            return os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(f"volume {volume!r} does not exist", target=volume) from None

    def _parent(self, volume: str, path: str) -> tuple[int, str]:
        """A descriptor of the folder holding ``path``'s last segment, and that segment
        (``""`` for the volume itself), reached without following any symlink."""
        parts = clean_path(path).split("/")
        return self._descend(volume, parts[:-1], make=False), parts[-1]

    def _folder(self, volume: str, path: str, *, make: bool) -> int:
        """A descriptor of the folder ``path`` (clean) of the volume, walked from its top
        following no symlink; missing folders made where ``make``, a file in the way a
        conflict."""
        return self._descend(volume, path.split("/") if path else [], make=make)

    def _descend(self, volume: str, names: list[str], *, make: bool) -> int:
        top = self._open_volume(volume)
        try:
            return descend(top, names, make=make)
        except OSError as e:
            _explain(e, top, str(e.filename), volume, str(e.filename))
        finally:
            os.close(top)

    def _open(
        self, volume: str, path: str, *, directory: bool = False
    ) -> tuple[int, os.stat_result]:
        """A descriptor of the file or folder at ``path`` and its stat; a symlink anywhere on
        the way is refused, and so is anything but a file or a folder."""
        where = clean_path(path)
        parent, name = self._parent(volume, where)
        if not name:
            return parent, os.fstat(parent)
        try:
            fd = _open_at(parent, name, FOLDER_FLAGS if directory else _ENTRY_FLAGS, volume, where)
        finally:
            os.close(parent)
        try:
            st = os.fstat(fd)
            _check_kind(st.st_mode, volume, where)
        except BaseException:
            os.close(fd)
            raise
        return fd, st

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
        cleaned = clean_path(path)
        parent, name = self._parent(volume, cleaned)
        try:
            with _translate(volume, cleaned):
                st = os.stat(name or ".", dir_fd=parent, follow_symlinks=False)
        finally:
            os.close(parent)
        _check_kind(st.st_mode, volume, cleaned)
        return stat_info(cleaned, st)

    def list_dir(
        self, volume: str, path: str = "", *, recursive: bool = False
    ) -> Iterator[FileInfo]:
        cleaned = clean_path(path)
        fd, _ = self._open(volume, cleaned, directory=True)
        try:
            with _translate(volume, cleaned):
                if recursive:
                    yield from _walk(fd, cleaned)
                    return
                for name, st in _entries(fd):
                    rel = f"{cleaned}/{name}" if cleaned else name
                    yield stat_info(rel, st)
        finally:
            os.close(fd)

    def open_file(self, volume: str, path: str) -> FileReader:
        cleaned = clean_path(path)
        fd, st = self._open(volume, cleaned)
        if stat_mode.S_ISDIR(st.st_mode):  # an entry only: a folder has no bytes to read
            os.close(fd)
            return FileReader(self, volume, cleaned, stat_info(cleaned, st))
        return _OpenFile(self, volume, cleaned, fd, st)

    def read(self, volume: str, path: str, offset: int = 0, length: int | None = None) -> bytes:
        with self.open_file(volume, path) as reader:
            if reader.info.is_dir:
                raise NotFoundError(f"{volume}/{reader.info.path}: is a directory")
            if length is None:
                length = max(0, reader.info.size - offset)
            return reader.read(offset, length)

    def upload(self, volume: str, path: str, source: Path) -> FileInfo:
        # by descriptor from the volume's top, following no symlink on the way (a job may
        # swap a folder for one while the upload runs), atomic and durable
        cleaned = clean_path(path, allow_root=False)
        folder, _, name = cleaned.rpartition("/")
        src, st = open_source(source)
        try:
            parent = self._folder(volume, folder, make=True)
            try:
                tmp = f".{name[:100]}.{secrets.token_hex(4)}{PARTIAL_SUFFIX}"
                mode = stat_mode.S_IMODE(st.st_mode)
                with _translate(volume, cleaned):
                    try:
                        put_file(parent, name, tmp, src, st, mode, durable=True)
                    except IsADirectoryError:
                        raise FileExistsError(cleaned) from None
            finally:
                os.close(parent)
        finally:
            os.close(src)
        return self.stat(volume, cleaned)

    def download(self, volume: str, path: str, target: Path) -> None:
        cleaned = clean_path(path)
        fd, st = self._open(volume, cleaned)
        with _translate(volume, cleaned), open(fd, "rb", closefd=True) as source:
            if stat_mode.S_ISDIR(st.st_mode):
                raise IsADirectoryError(cleaned)
            with atomic_target(target) as tmp, open(tmp, "wb") as copy:
                shutil.copyfileobj(source, copy, _COPY_CHUNK)

    def delete(self, volume: str, path: str) -> None:
        # by descriptor from the volume's top, following no symlink on the way: a job may
        # swap a folder for one between a check of the path and its use
        cleaned = clean_path(path, allow_root=False)
        parent, name = self._parent(volume, cleaned)
        try:
            with _translate(volume, cleaned):
                st = os.stat(name, dir_fd=parent, follow_symlinks=False)
                if stat_mode.S_ISDIR(st.st_mode):
                    shutil.rmtree(name, dir_fd=parent)  # descriptors all the way down
                else:
                    os.unlink(name, dir_fd=parent)  # a symlink itself, not what it points to
        finally:
            os.close(parent)

    def make_dir(self, volume: str, path: str) -> None:
        os.close(self._folder(volume, clean_path(path), make=True))

    def local_path(self, volume: str, path: str = "") -> Path | None:
        return self._resolve(volume, path)[1]


def open_source(source: Path) -> tuple[int, os.stat_result]:
    """The user's local file ``source`` opened for an upload, and its stat; only a regular
    file (``IsADirectoryError`` else, as openbai's errors)."""
    with _translate(str(source)):
        src = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
        try:
            st = os.fstat(src)
            if not stat_mode.S_ISREG(st.st_mode):
                raise IsADirectoryError(str(source))
        except BaseException:
            os.close(src)
            raise
    return src, st


def put_file(
    parent: int,
    name: str,
    tmp: str,
    source: int,
    st: os.stat_result,
    mode: int,
    *,
    durable: bool,
    umask: int = 0o777,
) -> None:
    """The open file ``source`` (its stat ``st``), from its offset, as ``name`` in the folder
    ``parent``: written under the temporary name ``tmp`` beside it, given mode ``mode`` and
    the source's times, renamed over ``name``. ``durable``: the file is synced before the
    rename and the folder after it (a tree transfer syncs its file system once at its end
    instead). ``umask`` spares the chmod when creating the file gave it ``mode`` already.
    A folder in the way is ``IsADirectoryError``; a failure leaves ``name`` as it was."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    out = os.open(tmp, flags, mode & 0o777, dir_fd=parent)
    try:
        try:
            copy_all(source, out, st.st_size)
            os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
            if mode & ~0o777 or mode & umask:  # bits the umask took, or special ones
                os.fchmod(out, mode)
            if durable:
                os.fsync(out)
        finally:
            os.close(out)
        os.rename(tmp, name, src_dir_fd=parent, dst_dir_fd=parent)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=parent)
        raise
    if durable:
        os.fsync(parent)


def copy_all(src: int, dst: int, size: int) -> None:
    """All of ``src`` from its offset into ``dst``, in the kernel where it can; ``size`` (its
    fstat) spares the call that would find the end."""
    copied = 0
    try:
        while n := os.copy_file_range(src, dst, 1 << 30):
            copied += n
            if copied == size:
                return
        return
    except OSError as e:  # another file system, an old kernel: copy through memory
        if copied or e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
    while block := os.read(src, _COPY_CHUNK):
        view = memoryview(block)
        while view:
            view = view[os.write(dst, view) :]


class _OpenFile(FileReader):
    """A file (or folder) of the volume held open: every read comes from this descriptor."""

    def __init__(self, backend: LocalStorage, volume: str, path: str, fd: int, st: os.stat_result):
        super().__init__(backend, volume, path, stat_info(path, st))
        # a file object closes the descriptor even when a dropped reader is never closed
        self._file = open(fd, "rb", buffering=0, closefd=True)  # noqa: SIM115
        self._where = (volume, path)

    def read(self, offset: int, length: int) -> bytes:
        pieces = []
        with _translate(*self._where):
            while length > 0:
                data = os.pread(self._file.fileno(), length, offset)
                if not data:
                    break
                pieces.append(data)
                offset += len(data)
                length -= len(data)
        return b"".join(pieces)

    def close(self) -> None:
        self._file.close()


def _open_at(dir_fd: int, name: str, flags: int, volume: str, where: str) -> int:
    """``name`` opened beneath ``dir_fd``: one segment, never a symlink."""
    if name in ("", ".", "..") or "/" in name:  # clean_path removed them: never reached
        raise SpecError(f"{where}: not a plain path segment", target="path")
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except OSError as e:
        _explain(e, dir_fd, name, volume, where)


def _explain(e: OSError, dir_fd: int, name: str, volume: str, where: str) -> NoReturn:
    """``e``, met opening ``name`` below ``dir_fd``, as openbai's error: a symlink or
    something else than a file or a folder is named as such."""
    if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENXIO):
        with contextlib.suppress(OSError):
            _check_kind(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode, volume, where)
    with _translate(volume, where):
        raise e
    raise AssertionError("unreachable: _translate raises")


def _check_kind(mode: int, volume: str, where: str) -> None:
    """Refuse a symlink (``PermissionDeniedError``) and anything but a file or a folder."""
    target = f"{volume}/{where}"
    if stat_mode.S_ISLNK(mode):
        raise PermissionDeniedError(
            f"{target}: is a symbolic link, which is never followed", target=target
        )
    if not (stat_mode.S_ISREG(mode) or stat_mode.S_ISDIR(mode)):
        raise NotFoundError(f"{target}: not a file or directory", target=target)


def _entries(fd: int) -> list[tuple[str, os.stat_result]]:
    """The files and folders in the folder ``fd``, by name: no symlinks, FIFOs or sockets, no
    partial uploads, nothing that vanished while listed."""
    found = []
    with os.scandir(fd) as it:
        for entry in it:
            if is_partial_name(entry.name):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat_mode.S_ISREG(st.st_mode) or stat_mode.S_ISDIR(st.st_mode):
                found.append((entry.name, st))
    return sorted(found)


def _walk(fd: int, prefix: str) -> Iterator[FileInfo]:
    """Every file under the folder ``fd``: this folder's files, then each sub-folder's, by
    name; sub-folders are opened beneath ``fd`` (one swapped for a symlink meanwhile is
    skipped, not followed)."""
    entries = _entries(fd)
    for name, st in entries:
        if not stat_mode.S_ISDIR(st.st_mode):
            yield stat_info(f"{prefix}/{name}" if prefix else name, st)
    for name, st in entries:
        if stat_mode.S_ISDIR(st.st_mode):
            try:
                sub = os.open(name, FOLDER_FLAGS, dir_fd=fd)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as e:
                if e.errno == errno.ELOOP:
                    continue
                raise
            try:
                yield from _walk(sub, f"{prefix}/{name}" if prefix else name)
            finally:
                os.close(sub)


def _is_volume_name(name: str) -> bool:
    """Whether a directory under the account is a volume (stray directories are not)."""
    try:
        check_volume_name(name)
    except SpecError:
        return False
    return True

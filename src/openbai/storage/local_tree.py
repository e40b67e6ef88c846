"""Many files into or out of an embedded volume at once, at about what ``cp -r`` costs.

Tree transfers of an embedded account do not call :meth:`LocalStorage.upload` or
:meth:`LocalStorage.download` per file (a path resolution from the volume down, a random
temporary name, two fsyncs, a copy through Python's buffers). Instead each folder, on either
side, is opened (or made) once and held as a descriptor; a file is reached from its folder by
name and copied in the kernel (``copy_file_range``) into a temporary name beside its target,
given its modification time and renamed over the target. Per file that is ``cp -r``'s open,
fstat, open, copy and two closes, plus a ``futimens`` (skip-unchanged compares mtimes) and the
rename that makes it atomic. Nothing is fsynced per file: the file system written to is synced
once at the end (``atomic.sync_later``), as ``cp -r && sync`` does.

Inside a volume nothing is reached through a symlink (``O_NOFOLLOW`` at every step, as every
read and write of :class:`LocalStorage`); in the user's own directory (an upload's source, a
download's target) links are followed, as ``cp -r`` follows the paths it is given.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import stat as stat_mode
import threading
from pathlib import Path

from openbai.errors import NotFoundError
from openbai.folders import FOLDER_FLAGS
from openbai.storage.atomic import PARTIAL_SUFFIX, sync_later
from openbai.storage.local import (  # the backend's own descriptor walk, reused
    _ENTRY_FLAGS,
    LocalStorage,
    _check_kind,
    _open_at,
    _translate,
    open_source,
    put_file,
)
from openbai.storage.names import check_volume_name

#: a folder of the user's directory: links followed
_LOCAL_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
#: downloaded files get this mode, as LocalStorage.download gives them
DOWNLOAD_MODE = 0o644


class _Folders:
    """Descriptors of the folders of one tree by relative path (``""`` is its top), each
    opened (or made) once, shared by any number of threads."""

    def __init__(self, top: int, volume: str | None):
        self._dirs = {"": top}
        self._volume = volume  # None: the user's directory, where links are followed
        self._lock = threading.Lock()

    def get(self, rel: str, *, make: bool) -> int | None:
        """The folder ``rel``'s descriptor; a missing one is made, or ``None`` without ``make``."""
        fd = self._dirs.get(rel)
        if fd is not None:
            return fd
        above, _, name = rel.rpartition("/")
        parent = self.get(above, make=make)
        if parent is None:
            return None
        with self._lock:
            fd = self._dirs.get(rel)
            if fd is None:
                if make:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(name, dir_fd=parent)
                try:
                    if self._volume is None:
                        fd = os.open(name, _LOCAL_DIR_FLAGS, dir_fd=parent)
                    else:
                        fd = _open_at(parent, name, FOLDER_FLAGS, self._volume, rel)
                except (FileNotFoundError, NotFoundError):
                    if make:
                        raise
                    return None
                self._dirs[rel] = fd
            return fd

    def close(self) -> None:
        with self._lock:
            dirs, self._dirs = self._dirs, {}
        for fd in dirs.values():
            os.close(fd)


class _Target:
    """Files written atomically into a tree: a temporary name beside the target, renamed."""

    def __init__(self, top: int, volume: str | None):
        self.folders = _Folders(top, volume)
        # temporary names: one random part per transfer and a counter, not getrandom per file
        self._tag = f".{secrets.token_hex(4)}."
        self._count = itertools.count()
        self._umask = _umask()

    def put(self, path: str, source: int, st: os.stat_result, mode: int) -> None:
        """Copy the open file ``source`` (its stat ``st``) to ``path``, mode ``mode`` and the
        source's times; a folder in the way raises ``IsADirectoryError``."""
        folder, _, name = path.rpartition("/")
        parent = self.folders.get(folder, make=True)
        assert parent is not None
        tmp = f".{name[:100]}{self._tag}{next(self._count):x}{PARTIAL_SUFFIX}"
        put_file(parent, name, tmp, source, st, mode, durable=False, umask=self._umask)


class TreeWriter:
    """Writes many local files into one volume, from any number of threads.

    What :meth:`LocalStorage.upload` does for one file (atomic, the source's mtime and mode
    kept, never through a symlink, a folder in the way is a conflict); the volume's file
    system is synced when the writer closes (or at the end of the surrounding
    ``deferred_sync``).
    """

    def __init__(self, backend: LocalStorage, volume: str):
        self._volume = volume
        self._root = backend.base / check_volume_name(volume)
        self._target = _Target(backend._open_volume(volume), volume)

    def __enter__(self) -> TreeWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._target.folders.close()
        sync_later(self._root)

    def write(self, path: str, source: Path) -> None:
        """Copy the local file ``source`` to ``path`` (already clean) of the volume."""
        src, st = open_source(source)
        try:
            with _translate(self._volume, path):
                try:
                    self._target.put(path, src, st, stat_mode.S_IMODE(st.st_mode))
                except IsADirectoryError:
                    raise FileExistsError(path) from None
        finally:
            os.close(src)


class TreeReader:
    """Copies many files of one volume into a local directory, from any number of threads.

    What :meth:`LocalStorage.download` does for one file (never through a symlink of the
    volume, only files, atomic), with the source's mtime set before the rename, so that a
    file appears whole and already dated (a re-run skips it by size and mtime). Folders
    missing in the target are made. The target's file system is synced on closing (or at
    the end of the surrounding ``deferred_sync``).
    """

    def __init__(self, backend: LocalStorage, volume: str, target_dir: Path):
        self._volume = volume
        self._target_dir = target_dir
        self._source = _Folders(backend._open_volume(volume), volume)
        try:
            target_dir.mkdir(parents=True, exist_ok=True)
            self._target = _Target(os.open(target_dir, _LOCAL_DIR_FLAGS), None)
        except BaseException:
            self._source.close()
            raise

    def __enter__(self) -> TreeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._source.close()
        self._target.folders.close()
        sync_later(self._target_dir)

    def local_stat(self, rel: str) -> os.stat_result | None:
        """The target's file at ``rel`` (links followed), if there is one."""
        folder, _, name = rel.rpartition("/")
        parent = self._target.folders.get(folder, make=False)
        if parent is None:
            return None
        try:
            st = os.stat(name, dir_fd=parent)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return st if stat_mode.S_ISREG(st.st_mode) else None

    def copy(self, path: str, rel: str) -> None:
        """Copy the volume's file ``path`` (already clean) to ``rel`` of the target."""
        folder, _, name = path.rpartition("/")
        with _translate(self._volume, path):
            parent = self._source.get(folder, make=False)
            if parent is None:
                raise FileNotFoundError(path)
            src = _open_at(parent, name, _ENTRY_FLAGS, self._volume, path)
        try:
            with _translate(self._volume, path):
                st = os.fstat(src)
                _check_kind(st.st_mode, self._volume, path)
                if stat_mode.S_ISDIR(st.st_mode):
                    raise IsADirectoryError(path)
            self._target.put(rel, src, st, DOWNLOAD_MODE)
        finally:
            os.close(src)


def _umask() -> int:
    """The process's umask, read without changing it (``0o777`` if unknown: always chmod)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o777

"""Atomic replacement of a local file: readers see the old file or the whole new one.

Data is written to a hidden temporary file in the target's directory, flushed to disk and
renamed over the target. A crash leaves only a hidden ``.<name>.<random>.openbai-part``
file behind, never a half-written target; :func:`is_partial_name` recognises those so that
listings and tree transfers can ignore them.

Inside :func:`deferred_sync` (a tree transfer of thousands of files) the two fsyncs per file
are left out and one ``syncfs`` per file system at the end makes everything durable, as
``cp -r; sync`` would: the fsyncs were 80 % of the time of copying small files. Renames stay
atomic, so readers and a re-run after Ctrl-C or a crash of the process see only whole files;
only a power loss during the transfer can leave the last files written empty or missing,
which a re-run (size check) copies again.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

PARTIAL_SUFFIX = ".openbai-part"


class _Deferred:
    """The directories written to while syncs are deferred, one per file system."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: set[Path] = set()
        self.by_device: dict[int, Path] = {}

    def add(self, directory: Path) -> None:
        if directory in self.seen:
            return
        device = directory.stat().st_dev
        with self.lock:
            self.seen.add(directory)
            self.by_device.setdefault(device, directory)


_deferred: contextvars.ContextVar[_Deferred | None] = contextvars.ContextVar(
    "openbai_deferred_sync", default=None
)


@contextlib.contextmanager
def deferred_sync() -> Iterator[None]:
    """Within (this context, and threads started with a copy of it), :func:`atomic_target`
    does not fsync; on leaving, every file system written to is synced once."""
    deferred = _Deferred()
    token = _deferred.set(deferred)
    try:
        yield
    finally:
        _deferred.reset(token)
        for directory in deferred.by_device.values():
            _syncfs(directory)


def sync_later(directory: Path) -> None:
    """Files were written beneath ``directory`` without fsyncs: inside
    :func:`deferred_sync` its file system is synced on leaving, outside it is synced now."""
    deferred = _deferred.get()
    if deferred is None:
        _syncfs(directory)
    else:
        deferred.add(directory)


def sync_filesystems(paths: Iterable[Path]) -> set[int]:
    """Flush each file system holding one of ``paths`` to disk, once (``syncfs`` writes a
    whole file system: a node's temp directory and the embedded volumes it links usually lie
    on one). The devices synced are returned; a path that does not exist is left out."""
    synced: set[int] = set()
    for path in paths:
        try:
            device = os.stat(path).st_dev
        except OSError:
            continue
        if device not in synced:
            _syncfs(path)
            synced.add(device)
    return synced


def is_partial_name(name: str) -> bool:
    """Whether a file name is one of our in-progress temporary files."""
    return name.startswith(".") and name.endswith(PARTIAL_SUFFIX)


@contextlib.contextmanager
def atomic_target(target: Path, *, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path to fill; on success it replaces ``target`` atomically.

    The caller writes (and may ``os.utime``) the yielded path. On an exception the temporary
    file is removed and ``target`` is left as it was. Parent directories are created.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name[:100]}.", suffix=PARTIAL_SUFFIX
    )
    os.close(fd)
    tmp = Path(name)
    deferred = _deferred.get()
    try:
        yield tmp
        if deferred is None:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        else:
            deferred.add(target.parent)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if e.filename != str(tmp):
            raise
        # said of the file the user named, not of the hidden one it was written as
        raise type(e)(e.errno, e.strerror, str(target)) from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if deferred is None:
        _fsync_dir(target.parent)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _syncfs(directory: Path) -> None:
    """Flush the file system holding ``directory`` (Linux ``syncfs``; else all of them)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        os.sync()
        return
    try:
        import ctypes  # here: only a sync of a whole file system needs it

        syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
        if syncfs is None or syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)

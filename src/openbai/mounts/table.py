"""The node's mount table: what is mounted under a directory, and taking stale mounts away.

A runner that was killed leaves its FUSE mounts behind. Before a job directory is wiped,
everything mounted under it is unmounted, so that wiping can never delete data in storage.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from openbai.errors import MountError


def mounts_under(root: Path) -> list[Path]:
    """Mount points at or below ``root``, deepest first."""
    prefix = str(root.absolute()).rstrip("/")
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        point = line.split()[4].encode().decode("unicode_escape")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def unmount(point: Path) -> None:
    for argv in (["fusermount3", "-u", "-z"], ["fusermount", "-u", "-z"], ["umount", "-l"]):
        if shutil.which(argv[0]) is None:
            continue
        if subprocess.run([*argv, str(point)], capture_output=True).returncode == 0:
            return
    raise MountError(f"cannot unmount stale mount {point}")


def remove_tree(root: Path) -> None:
    """Delete a job directory: stale mounts under it are unmounted first, never descended."""
    if not root.exists() and not root.is_symlink():
        return
    for point in mounts_under(root):
        unmount(point)
    if mounts_under(root):
        raise MountError(f"refusing to delete {root}: something is still mounted under it")
    shutil.rmtree(root)


_libc = ctypes.CDLL(None, use_errno=True)


def sync_filesystem(path: Path) -> None:
    """Flush the filesystem holding ``path`` to disk (syncfs(2))."""
    sync_filesystems([path])


def sync_filesystems(paths: Iterable[Path]) -> set[int]:
    """Flush each filesystem holding one of ``paths`` to disk, once: syncfs(2) writes a whole
    filesystem, and a node's temp directory and the embedded volumes it links usually lie on
    one. The devices synced are returned; a path that does not exist is left out."""
    synced: set[int] = set()
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            device = os.fstat(fd).st_dev
            if device not in synced:
                _libc.syncfs(fd)
                synced.add(device)
        finally:
            os.close(fd)
    return synced

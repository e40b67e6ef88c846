"""The node's mount table: what is mounted under a directory, and taking stale mounts away.

A runner that was killed leaves its FUSE mounts behind. Before a job directory is wiped,
everything mounted under it is unmounted, so that wiping can never delete data in storage.
"""

from __future__ import annotations

import shutil
import subprocess
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

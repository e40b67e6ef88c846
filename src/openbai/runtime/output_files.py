"""The files and folders a node runner makes on a job's volumes: never outside the volume, and
never through a symbolic link that a job put there.

The runner works as root outside the sandbox, and what it opens (stdout and stderr of every
task, the execution log, the output folders) lies on volumes that jobs write: one job, or its
own job preparation before the main command, may leave ``stdout.txt`` or a folder on the way
as a link to a host file, and a path a job names through its variables may climb out with
``..``. So every path is first placed on the volume it lies on (cleaned: ``..`` that leaves the
volume is refused), then walked folder by folder from the volume's own directory, each opened
without following a link (``O_NOFOLLOW``), the file too.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Sequence

from openbai.errors import MountError
from openbai.folders import FOLDER_FLAGS, descend
from openbai.mounts.base import Mount
from openbai.mounts.link import open_anchor
from openbai.runtime.stopping import JobFailure

# O_NONBLOCK: a FIFO a job put there is refused, not waited on (for a file it changes nothing)
_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class Volumes:
    """The job's mounts, as places the runner writes to."""

    def __init__(self, mounts: Sequence[Mount]):
        #: the list the runner fills as it mounts (read at each call)
        self.mounts = mounts

    def locate(self, path: str) -> tuple[str | Mount, list[str]]:
        """The directory of the volume ``path`` lies on (the one the mount stands for, as
        recorded when it was made, not a link the job could have replaced) and the folders
        and file below it; a JobFailure when it lies on none."""
        clean = posixpath.normpath(path)
        best: Mount | None = None
        for mount in self.mounts:
            at = str(mount.path)
            if (clean == at or clean.startswith(at.rstrip("/") + "/")) and (
                best is None or len(at) > len(str(best.path))
            ):
                best = mount
        if best is None:
            raise JobFailure(
                "OutputDirectoryError",
                f"{path} is on none of the job's volumes: nothing is written",
            )
        parts = [p for p in clean[len(str(best.path)) :].split("/") if p]
        if best.anchor is not None:  # a folder other jobs write: reached through no link
            return best, parts
        return str(best.local_source or best.path), parts

    def make_dirs(self, path: str) -> None:
        """Make the folder ``path`` and those on its way, on its volume."""
        root, parts = self.locate(path)
        os.close(_walk(root, parts, path))

    def open_append(self, path: str, mode: int = 0o644) -> int:
        """A descriptor of the file ``path`` opened for appending (made if missing)."""
        root, parts = self.locate(path)
        if not parts:
            raise JobFailure("OutputDirectoryError", f"{path} is a volume, not a file")
        folder = _walk(root, parts[:-1], path)
        try:
            fd = os.open(parts[-1], _APPEND, mode, dir_fd=folder)
        except OSError as exc:
            raise _refused(path, exc) from exc
        finally:
            os.close(folder)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise JobFailure("OutputDirectoryError", f"cannot write {path}: it is not a file")
        return fd


def _walk(root: str | Mount, parts: Sequence[str], path: str) -> int:
    """A descriptor of the folder ``root/parts...``, each made where missing; none a link."""
    try:
        if isinstance(root, Mount):
            assert root.anchor is not None
            top = open_anchor(root.anchor)
        else:
            top = os.open(root, FOLDER_FLAGS)
    except OSError as exc:
        raise _refused(path, exc) from exc
    except MountError as exc:  # a link put on the way to the volume's folder
        raise JobFailure("OutputDirectoryError", f"{path}: {exc.message}") from exc
    try:
        return descend(top, parts, make=True, mode=0o755)
    except OSError as exc:
        raise _refused(path, exc) from exc
    finally:
        os.close(top)


def _refused(path: str, exc: OSError) -> JobFailure:
    why = exc.strerror or str(exc)
    if exc.errno in (errno.ENOTDIR, errno.ELOOP, errno.EEXIST):
        why = "a symbolic link or a file is on its way (the runner follows no link on a volume)"
    elif exc.errno == errno.ENXIO:  # opened without waiting for a reader
        why = "it is not a file (a FIFO, a device?)"
    return JobFailure("OutputDirectoryError", f"cannot write {path}: {why}")

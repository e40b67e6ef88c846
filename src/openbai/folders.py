"""Going down a tree that others write, one folder at a time, following no link.

openbai works as root on trees that jobs write (embedded volumes, the folders of a job's
outputs): a path checked and then used would follow a link a job put on the way meanwhile.
So a folder is reached from a descriptor of the tree's top, each name opened below the one
before without following a link (``O_NOFOLLOW``): what is found is what is used.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence

#: a folder on the way: never through a link
FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def descend(top: int, names: Sequence[str], *, make: bool = False, mode: int = 0o777) -> int:
    """A new descriptor of the folder ``names`` below the folder ``top`` (which stays the
    caller's). Where ``make``, a missing folder is made (``mode``, less the umask), and a file
    in its place is ``FileExistsError``. A link on the way is ``ELOOP`` or ``ENOTDIR``. The
    error's ``filename`` is the path below ``top`` where the way ended."""
    fd = os.dup(top)
    try:
        for i, name in enumerate(names):
            try:
                inner = _step(fd, name, make, mode)
            except OSError as exc:
                exc.filename = "/".join(names[: i + 1])
                raise
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


def _step(fd: int, name: str, make: bool, mode: int) -> int:
    if not make:
        return os.open(name, FOLDER_FLAGS, dir_fd=fd)
    try:
        os.mkdir(name, mode, dir_fd=fd)
    except FileExistsError:
        pass  # there already, or made meanwhile: opened below as any other
    try:
        return os.open(name, FOLDER_FLAGS, dir_fd=fd)
    except NotADirectoryError as exc:
        if stat.S_ISREG(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
            raise FileExistsError(errno.EEXIST, "a file is where a folder is to be made") from exc
        raise

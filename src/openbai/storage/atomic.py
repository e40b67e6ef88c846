"""Atomic replacement of a local file: readers see the old file or the whole new one.

Data is written to a hidden temporary file in the target's directory, flushed to disk and
renamed over the target. A crash leaves only a hidden ``.<name>.<random>.openbai-part``
file behind, never a half-written target; :func:`is_partial_name` recognises those so that
listings and tree transfers can ignore them.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

PARTIAL_SUFFIX = ".openbai-part"


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
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

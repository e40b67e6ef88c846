"""Files only the installation may read: written whole or not at all, created once.

Every file that holds a key, a token or a secret goes through here, so each is mode 0600
from its first byte and a concurrent reader never sees half of it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def _temporary(path: Path, data: bytes, *, durable: bool) -> str:
    """A new private file beside ``path`` holding ``data`` (a unique name: no two writers share it)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def private_opener(path: str, flags: int) -> int:
    """An ``opener`` for :func:`open`: a file it creates is readable only by its owner from
    its first byte, whatever the umask (for files appended to, which cannot be replaced)."""
    return os.open(path, flags, 0o600)


def write_private(path: Path, text: str | bytes, *, durable: bool = True) -> None:
    """Replace ``path`` atomically with a file readable only by its owner (synced if durable)."""
    data = text.encode() if isinstance(text, str) else text
    tmp = _temporary(path, data, durable=durable)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def create_once(path: Path, make: Callable[[], bytes]) -> bytes:
    """The contents of ``path``, created private with ``make()`` if absent.

    Of concurrent creators the first link wins and every one returns what won, so two
    processes starting at once never end up with two different keys.
    """
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    tmp = _temporary(path, make(), durable=True)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return path.read_bytes()

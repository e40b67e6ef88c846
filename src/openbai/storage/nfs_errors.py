"""libnfs's errnos translated into openbai's error tree, in one context manager.

A missing file or directory (or a stale handle) is ``NotFoundError``, a name collision
``ConflictError``, a refused access ``PermissionDeniedError``, a lost or refused connection
``BackendUnavailableError``; the rest is ``StorageError``. Every error is raised ``from`` the
``OSError``, with the ``volume/path`` it concerns as ``target``.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator

from openbai.errors import (
    BackendUnavailableError,
    ConflictError,
    NotFoundError,
    OpenBaiError,
    PermissionDeniedError,
    StorageError,
)

_NOT_FOUND = {errno.ENOENT, errno.ENOTDIR, errno.ESTALE}
_CONFLICT = {errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}
#: (libnfs reports a connection the server closed, "Socket failed with POLLHUP", as EINTR)
_UNAVAILABLE = {
    errno.ECONNREFUSED,
    errno.ETIMEDOUT,
    errno.EIO,
    errno.ECONNRESET,
    errno.EPIPE,
    errno.EINTR,
}


@contextlib.contextmanager
def translate(where: str) -> Iterator[None]:
    """libnfs's errnos as openbai's errors, naming ``where``."""
    try:
        yield
    except OpenBaiError:
        raise
    except OSError as e:
        message = f"{where}: {e.strerror or e} ({errno.errorcode.get(e.errno or 0, e.errno)})"
        if e.errno in _NOT_FOUND:
            raise NotFoundError(message, target=where) from e
        if e.errno in _CONFLICT:
            raise ConflictError(message, target=where) from e
        if e.errno in _DENIED:
            raise PermissionDeniedError(message, target=where) from e
        if e.errno in _UNAVAILABLE:
            raise BackendUnavailableError(message, target=where) from e
        raise StorageError(message, target=where) from e

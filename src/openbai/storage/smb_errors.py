"""smbprotocol's exceptions translated into openbai's error tree, in one context manager.

NT status codes decide the class: a missing file, directory or share is ``NotFoundError``, a
name collision ``ConflictError``, a refused logon or access ``PermissionDeniedError``, a lost
or refused connection ``BackendUnavailableError``; the rest is ``StorageError``. Every error
is raised ``from`` the original, with the ``volume/path`` it concerns as ``target``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from smbprotocol.exceptions import (  # type: ignore[import-untyped]
    SMBConnectionClosed,
    SMBException,
    SMBOSError,
    SMBResponseException,
)
from smbprotocol.header import NtStatus  # type: ignore[import-untyped]

from openbai.errors import (
    BackendUnavailableError,
    ConflictError,
    NotFoundError,
    OpenBaiError,
    PermissionDeniedError,
    StorageError,
)

_NOT_FOUND = {
    NtStatus.STATUS_OBJECT_NAME_NOT_FOUND,
    NtStatus.STATUS_OBJECT_PATH_NOT_FOUND,
    NtStatus.STATUS_NOT_FOUND,
    NtStatus.STATUS_BAD_NETWORK_NAME,
    NtStatus.STATUS_NETWORK_NAME_DELETED,
    NtStatus.STATUS_FILE_IS_A_DIRECTORY,
    NtStatus.STATUS_NOT_A_DIRECTORY,
    NtStatus.STATUS_DELETE_PENDING,
}
_DENIED = {
    NtStatus.STATUS_ACCESS_DENIED,
    NtStatus.STATUS_LOGON_FAILURE,
    NtStatus.STATUS_PRIVILEGE_NOT_HELD,
    NtStatus.STATUS_WRONG_PASSWORD,
    NtStatus.STATUS_PASSWORD_EXPIRED,
}


@contextlib.contextmanager
def translate(where: str) -> Iterator[None]:
    """Turn smbprotocol (and local file) exceptions into openbai storage errors."""
    try:
        yield
    except SMBOSError as e:
        raise _error_for(e.ntstatus, where, e.strerror) from e
    except SMBResponseException as e:
        raise _error_for(e.status, where, str(e.message)) from e
    except (SMBConnectionClosed, ConnectionError, TimeoutError) as e:
        raise BackendUnavailableError(f"{where}: SMB server unreachable ({e})", target=where) from e
    except ValueError as e:  # smbprotocol reports a failed TCP connect as ValueError
        kind = BackendUnavailableError if "Failed to connect" in str(e) else StorageError
        raise kind(f"{where}: {e}", target=where) from e
    except SMBException as e:
        raise StorageError(f"{where}: SMB error: {e}", target=where) from e
    except FileNotFoundError as e:  # a local source file
        raise NotFoundError(f"{e.filename}: no such file", target=where) from e
    except OSError as e:
        raise StorageError(f"{e.filename or where}: {e.strerror or e}", target=where) from e


def _error_for(status: int, where: str, detail: str | None) -> OpenBaiError:
    name = next((k for k, v in vars(NtStatus).items() if v == status), f"0x{status:08x}")
    message = f"{where}: {detail or name} ({name})"
    if status in _NOT_FOUND:
        return NotFoundError(message, target=where)
    if status == NtStatus.STATUS_OBJECT_NAME_COLLISION:
        return ConflictError(message, target=where)
    if status in _DENIED:
        return PermissionDeniedError(message, target=where)
    return StorageError(message, target=where)

"""The Azure SDKs' exceptions as openbai's storage errors, for the blob and file services alike.

azure-core is imported when an error is translated, not before: a command that never calls the
SDK (a tree transfer through ``blob_rest.py``) never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from openbai.errors import (
    BackendUnavailableError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
)

if TYPE_CHECKING:
    from azure.core.exceptions import HttpResponseError


def sdk_error(e: Exception, where: str, *, service: str) -> Exception:
    """The openbai error for an Azure SDK exception raised at ``where`` by the ``service``
    ("blob", "file"); any other exception is ``e`` itself."""
    from azure.core.exceptions import (
        AzureError,
        ClientAuthenticationError,
        HttpResponseError,
        ResourceExistsError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )

    if isinstance(e, ResourceNotFoundError):
        return NotFoundError(f"{where}: not found{_code(e)}", target=where)
    if isinstance(e, ResourceExistsError):
        return ConflictError(f"{where}: already exists{_code(e)}", target=where)
    if isinstance(e, ClientAuthenticationError):
        return PermissionDeniedError(f"{where}: authentication failed", target=where)
    if isinstance(e, HttpResponseError):
        status = e.status_code or 0
        kind: type[StorageError] = StorageError
        if status == 403:
            kind = PermissionDeniedError
        elif status >= 500:
            kind = BackendUnavailableError
        detail = getattr(e, "error_code", None) or e.reason
        return kind(f"{where}: HTTP {status} {detail}", target=where)
    if isinstance(e, (ServiceRequestError, ServiceResponseError)):
        return BackendUnavailableError(f"{where}: {service} service unreachable", target=where)
    if isinstance(e, AzureError):
        return StorageError(f"{where}: {e.message}", target=where)
    return e


def _code(error: HttpResponseError) -> str:
    """`` (ContainerNotFound)``: the storage error code the SDK attaches, if any."""
    code = getattr(error, "error_code", None)
    return f" ({code})" if code else ""

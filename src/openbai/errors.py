"""The exception tree of openbai.

Every error raised by openbai derives from :class:`OpenBaiError`; backends translate
their SDK's exceptions into this tree at their boundary, and only the edges (CLI, REST API)
turn them into exit codes, HTTP statuses and messages::

    OpenBaiError
    ├── SpecError                  invalid user input (field names the offending field)
    ├── NotFoundError              a resource (workspace, job, account, file ...) does not exist
    ├── ConflictError              a resource already exists / is in the wrong state
    ├── AuthError                  missing or wrong credentials
    │   └── AuthorizationError     valid credentials that may not do this (role, workspaces)
    ├── StorageError               a storage backend failed
    │   ├── PermissionDeniedError
    │   └── BackendUnavailableError
    ├── MountError                 a volume could not be mounted into a job
    └── ExecutorError              where jobs run failed us
        ├── SubmitError
        ├── ExecutorUnavailableError   the scheduler cannot be reached now; try again later
        └── JobNotFoundError

``NotFoundError`` is also used by storage backends for a missing blob/file/container.
"""

from __future__ import annotations


class OpenBaiError(Exception):
    """Root of all openbai errors. ``code`` is the ARM-style error code."""

    code = "InternalError"

    def __init__(self, message: str, *, code: str | None = None, target: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.target = target


class SpecError(OpenBaiError):
    """Invalid user input; ``target`` names the field (``properties.nodeCount``)."""

    code = "InvalidParameter"


class TooLargeError(SpecError):
    """A request or a document over the size openbai reads (ARM's 4 MiB)."""

    code = "RequestEntityTooLarge"


class NotFoundError(OpenBaiError):
    code = "ResourceNotFound"


class ConflictError(OpenBaiError):
    code = "Conflict"


class AuthError(OpenBaiError):
    code = "AuthenticationFailed"


class AuthorizationError(AuthError):
    """The caller is known but may not do this: its role is too low, or the resource lies
    outside the workspaces its token is limited to (ARM's 403 ``AuthorizationFailed``)."""

    code = "AuthorizationFailed"


class StorageError(OpenBaiError):
    code = "StorageError"


class PermissionDeniedError(StorageError):
    code = "PermissionDenied"


class BackendUnavailableError(StorageError):
    code = "StorageUnavailable"


class MountError(OpenBaiError):
    code = "MountError"


class ExecutorError(OpenBaiError):
    code = "ExecutorError"


class SubmitError(ExecutorError):
    """A job could not be handed to its executor; carries the command and its output."""

    code = "SubmitError"

    def __init__(
        self,
        message: str,
        *,
        command: list[str] | None = None,
        exit_code: int | None = None,
        stdout: str = "",
        stderr: str = "",
    ):
        super().__init__(message)
        self.command = command
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr


class ExecutorUnavailableError(ExecutorError):
    """The executor's scheduler cannot be reached now (slurmctld restarting, say): the job
    is not refused, it waits."""

    code = "ExecutorUnavailable"


class JobNotFoundError(ExecutorError):
    code = "JobNotFound"

"""What the kernel lets a job's processes be started with (``execve(2)``'s limits).

A job's command line reaches bash as one argument (``bash -c COMMAND``) and each of its
variables is one ``NAME=value`` string of the environment. Linux refuses (``E2BIG``) a single
string of 128 KiB or more (``MAX_ARG_STRLEN``, fixed in the kernel) and arguments plus
environment over ``ARG_MAX`` (a quarter of the stack limit, 2 MiB by default). Checked when
the job is created, so that a job that could never start is refused naming the field, rather
than accepted and failed with an ``InternalError`` on the node.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from openbai.spec.base import FieldError
from openbai.spec.common import EnvironmentVariable, EnvironmentVariableWithSecretValue

__all__ = ["MAX_ARG_STRLEN", "check_process_sizes", "total_budget"]

MAX_ARG_STRLEN = 32 * 4096
"""The longest single argument or ``NAME=value``, its terminating NUL included (bytes)."""

# What openbai puts around a command (the interpreter, mpirun and its ``-x NAME`` list):
# generous, so that a command passing the check also passes once it is wrapped.
_WRAPPING = 8 * 1024
# Each string also costs a pointer in the argv/envp arrays.
_POINTER = 8

Location = tuple[str | int, ...]


def total_budget() -> int:
    """Bytes the job's own command lines and variables may take together: half of
    ``ARG_MAX``, the rest left to the node's environment and openbai's ``AZ_BATCHAI_*``."""
    try:
        arg_max = os.sysconf("SC_ARG_MAX")
    except (ValueError, OSError):
        arg_max = -1
    return (arg_max if arg_max > 0 else 2 * 1024 * 1024) // 2


Command = Sequence[tuple[Location, str | None]]
Variables = Sequence[tuple[str, Sequence[EnvironmentVariable | EnvironmentVariableWithSecretValue]]]


def check_process_sizes(commands: Sequence[Command], variables: Variables) -> None:
    """Raise :class:`FieldError` at the first command or variable too long to be started.

    ``commands`` are the command lines of a job, each as the fields it is built from
    (``pythonScriptFilePath`` and ``commandLineArgs`` make one):
    ``[[(("customToolkitSettings", "commandLine"), "echo hi")]]``. ``variables`` are
    ``("environmentVariables", [...])`` groups; their values are never echoed (secrets).
    """
    limit = MAX_ARG_STRLEN - 1
    total = 0
    for parts in commands:
        sizes = [(loc, len(text.encode("utf-8"))) for loc, text in parts if text]
        if not sizes:
            continue
        size = sum(size for _, size in sizes) + len(sizes) - 1  # the spaces joining them
        biggest = max(sizes, key=lambda item: item[1])[0]
        if size + _WRAPPING > limit:
            raise FieldError(
                f"must be at most {limit - _WRAPPING} bytes long as a command line (with the"
                f" fields it is joined with), but is {size}: the kernel starts no process with"
                f" an argument of {MAX_ARG_STRLEN // 1024} KiB or more; put it in a script",
                *biggest,
            )
        total += size + _WRAPPING + _POINTER
    for group, items in variables:
        for index, item in enumerate(items):
            value = item.value or ""
            size = len(item.name.encode("utf-8")) + 1 + len(value.encode("utf-8"))
            if size > limit:
                raise FieldError(
                    f"must be at most {limit - len(item.name) - 1} bytes long, but is"
                    f" {size - len(item.name) - 1}: the kernel starts no process with an"
                    f" environment variable (NAME=value) of {MAX_ARG_STRLEN // 1024} KiB or"
                    " more; put it in a file",
                    group,
                    index,
                    "value",
                )
            total += size + 1 + _POINTER
    budget = total_budget()
    if total > budget:
        raise FieldError(
            f"the job's command lines and environment variables take {total} bytes together,"
            f" more than the {budget} the kernel leaves them (ARG_MAX); put the data in files",
            *next(((group,) for group, items in variables if items), ()),
        )

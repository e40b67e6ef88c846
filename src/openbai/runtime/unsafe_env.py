"""What a job's variables must not reach: the programs the node runs as root to start a task
(the shell that enters the slot's control groups, bubblewrap, setpriv, the container runtime).

The dynamic loader and libc read code and data from paths named in the environment
(``LD_PRELOAD``, ``LD_LIBRARY_PATH``, ``GCONV_PATH``...), and ignore them only in setuid
programs: a job whose variables reached one of those root programs as they are would run its
own library as root. They are held under another name (``OPENBAI_HELD_<NAME>``) on the way,
and the task's own shell, which runs as the job user, sets them back before the job's
command line runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

#: glibc's list of variables it drops for setuid programs, less ``TMPDIR`` and those of the
#: resolver and the time zone, which these programs do not use; and every ``LD_`` variable
_UNSAFE = frozenset({"GCONV_PATH", "GETCONF_DIR", "GLIBC_TUNABLES", "LOCPATH", "MALLOC_TRACE",
                     "NLSPATH"})  # fmt: skip
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
HELD = "OPENBAI_HELD_"


def unsafe(name: str) -> bool:
    return (name.startswith("LD_") or name in _UNSAFE) and bool(_NAME.match(name))


def held_name(name: str) -> str:
    """The name ``name`` goes by past the node's root programs."""
    return HELD + name if unsafe(name) else name


def hold(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with every unsafe variable renamed, for a program the node runs as root."""
    return {held_name(k): v for k, v in env.items() if not k.startswith(HELD)}


def restoring(env: Mapping[str, str], command: str) -> str:
    """``command`` for the task's shell, preceded by what sets the held variables back."""
    names = sorted(k for k in env if unsafe(k))
    if not names:
        return command
    back = " ".join(f'{k}="${held_name(k)}"' for k in names)
    held = " ".join(map(held_name, names))
    return f"export {back}; unset {held}\n{command}"

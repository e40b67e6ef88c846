"""``$VAR`` expansion as Batch AI's node agent did it.

Batch AI expanded ``$AZ_BATCHAI_*`` references in non-shell fields (paths, script paths,
command-line arguments) before use, with environment-style rules: ``$NAME`` and ``${NAME}``.
Two flavours are needed:

* :func:`expand_path` for fields that never reach a shell: unknown names become empty.
* :func:`expand_known` for text that a shell will run afterwards: only names we define are
  replaced, everything else (``$1``, ``$RANDOM``, variables set by job preparation) is left
  for bash.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_REFERENCE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def expand_known(text: str, values: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values[name] if name in values else match.group(0)

    return _REFERENCE.sub(replace, text)


def expand_path(text: str, values: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        return values.get(match.group(1) or match.group(2), "")

    return _REFERENCE.sub(replace, text)


def references(text: str) -> list[str]:
    """The variable names referenced in ``text``, in order."""
    return [m.group(1) or m.group(2) for m in _REFERENCE.finditer(text)]

"""Volume names: the rules Azure sets for blob container and file share names.

Every backend checks names with :func:`check_volume_name`, so a volume created on the
embedded account can later move to an Azure account unchanged.
"""

from __future__ import annotations

import re

from openbai.errors import SpecError

_VOLUME_NAME = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*")


def check_volume_name(name: str, *, field: str = "volume") -> str:
    """Return ``name`` if it is a valid container/share name, else raise ``SpecError``.

    3-63 characters of lowercase letters, digits and hyphens; starts and ends with a letter
    or digit; no two hyphens in a row.
    """
    if not 3 <= len(name) <= 63:
        raise SpecError(
            f"{field} must be 3 to 63 characters long, got {len(name)}: {name!r}", target=field
        )
    if not _VOLUME_NAME.fullmatch(name):
        raise SpecError(
            f"{field} may hold only lowercase letters, digits and single hyphens, and must start"
            f" and end with a letter or digit: {name!r}",
            target=field,
        )
    return name

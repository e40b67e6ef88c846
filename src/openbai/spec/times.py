"""Times on the wire: ISO 8601 in UTC with a ``Z``, as ARM writes them."""

from __future__ import annotations

from datetime import datetime


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")

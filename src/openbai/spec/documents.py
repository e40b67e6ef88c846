"""How big and how deep a JSON document openbai reads: a request body or a job.json.

ARM refuses request bodies over 4 MiB; openbai does the same, and the CLI refuses a file over
it before reading it whole (``bai job create -f /dev/zero`` must not grow without bound).
Nesting is bounded too: Batch AI's documents nest about ten levels, and Python's parser
would otherwise fail deep inside with a ``RecursionError``.
"""

from __future__ import annotations

import json
from typing import Any

from openbai.errors import SpecError, TooLargeError

MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64


def too_large(what: str, *, field: str) -> TooLargeError:
    return TooLargeError(
        f"{what} is larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB", target=field
    )


def check_depth(data: Any, *, what: str, field: str) -> None:
    """Refuse objects and arrays nested deeper than :data:`MAX_DEPTH` (iteratively)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value
        if not isinstance(value, dict | list):
            continue
        if depth > MAX_DEPTH:
            raise SpecError(
                f"{what} nests objects and arrays deeper than {MAX_DEPTH} levels",
                code="InvalidRequestContent",
                target=field,
            )
        stack.extend((child, depth + 1) for child in children)


def loads(text: str | bytes, *, what: str, field: str) -> Any:
    """``json.loads`` with the depth bound; a JSONDecodeError is left to the caller."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise SpecError(
            f"{what} nests objects and arrays deeper than {MAX_DEPTH} levels",
            code="InvalidRequestContent",
            target=field,
        ) from None
    check_depth(data, what=what, field=field)
    return data

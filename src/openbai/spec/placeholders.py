"""``<AZURE_BATCHAI_STORAGE_ACCOUNT>``-style placeholders in config files.

Batch AI's recipes ship job.json files with placeholders that ``az`` replaced client-side
from ``--storage-account-name/--storage-account-key`` (or the matching environment
variables). The models accept placeholders as ordinary strings; these pure functions find
and fill them, so the CLI or the service can substitute values and refuse a document that
still holds unfilled ones.

A placeholder is ``<`` + an upper-case identifier + ``>``. Lower-case or spaced text in
angle brackets (``python a.py < in > out``) is left alone: it is far more likely a shell
redirection than a placeholder.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from openbai.errors import SpecError

__all__ = [
    "STORAGE_ACCOUNT_PLACEHOLDER",
    "STORAGE_KEY_PLACEHOLDER",
    "check_no_placeholders",
    "fill_storage_placeholders",
    "find_placeholders",
    "substitute_placeholders",
]

STORAGE_ACCOUNT_PLACEHOLDER = "<AZURE_BATCHAI_STORAGE_ACCOUNT>"
"""Replaced by the storage account name (in ``accountName`` or inside ``azureFileUrl``)."""

STORAGE_KEY_PLACEHOLDER = "<AZURE_BATCHAI_STORAGE_KEY>"
"""Replaced by the storage account key (in ``credentials.accountKey``)."""

_PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*>")


def find_placeholders(data: Any) -> list[str]:
    """Every distinct placeholder in the string values of ``data``, in order of appearance.

    ``data`` is any JSON-like value (dicts, lists, strings); keys are not searched.
    """
    found: dict[str, None] = {}
    for text in _strings(data):
        for match in _PLACEHOLDER.finditer(text):
            found.setdefault(match.group(0), None)
    return list(found)


def substitute_placeholders(data: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """A deep copy of ``data`` with each placeholder in ``values`` replaced in every string.

    ``values`` maps placeholders to their values; keys may be written with or without the
    angle brackets (``"AZURE_BATCHAI_STORAGE_KEY"`` or ``"<AZURE_BATCHAI_STORAGE_KEY>"``).
    Placeholders without a value are left as they are; ``data`` itself is not changed.
    """
    table = {_bracketed(key): value for key, value in values.items()}
    result = _replace(copy.deepcopy(data), table)
    assert isinstance(result, dict)
    return result


def fill_storage_placeholders(
    body: dict[str, Any], account: str | None, key: str | None, *, what: str, target: str
) -> dict[str, Any]:
    """``body`` with the storage placeholders filled from ``--storage-account-name/-key``, as
    az did client-side; a placeholder left over is refused naming ``target``."""
    values = {STORAGE_KEY_PLACEHOLDER: key or ""}
    if account:
        values[STORAGE_ACCOUNT_PLACEHOLDER] = account
    filled = substitute_placeholders(body, values)
    check_no_placeholders(filled, what=what, target=target)
    return filled


def check_no_placeholders(data: dict[str, Any], *, what: str, target: str) -> None:
    """Refuse a document that still names the storage account by placeholder."""
    unresolved = [p for p in find_placeholders(data) if p != STORAGE_KEY_PLACEHOLDER]
    if unresolved:
        raise SpecError(
            f"the {what} still holds the placeholder(s) {', '.join(unresolved)}: pass"
            " --storage-account-name (or set AZURE_BATCHAI_STORAGE_ACCOUNT) to fill them in",
            target=target,
        )


def _bracketed(key: str) -> str:
    return key if key.startswith("<") and key.endswith(">") else f"<{key}>"


def _strings(data: Any) -> list[str]:
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        return [text for value in data.values() for text in _strings(value)]
    if isinstance(data, list | tuple):
        return [text for value in data for text in _strings(value)]
    return []


def _replace(data: Any, table: dict[str, str]) -> Any:
    if isinstance(data, str):
        return _PLACEHOLDER.sub(lambda m: table.get(m.group(0), m.group(0)), data)
    if isinstance(data, dict):
        return {key: _replace(value, table) for key, value in data.items()}
    if isinstance(data, list):
        return [_replace(value, table) for value in data]
    return data

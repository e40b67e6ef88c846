"""Workspaces: ``WorkspaceCreateParameters`` (PUT) and ``WorkspaceUpdateParameters`` (PATCH).

A workspace is a named container of experiments, clusters and file servers. Its only
inputs are ``location`` (kept for ARM compatibility; openbai runs where it runs) and
``tags``. Tags follow ARM's limits (50 tags, names up to 512 and values up to 256
characters) so that a document accepted here would also have been accepted by Azure.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from openbai.spec.base import WireModel

__all__ = ["Tags", "WorkspaceCreateParameters", "WorkspaceUpdateParameters"]

_LOCATION = re.compile(r"[-A-Za-z0-9._]+")


def _location(value: str) -> str:
    if not _LOCATION.fullmatch(value):
        raise ValueError(f"{value!r} may contain only letters, digits, '-', '_' and '.'")
    return value


def _tags(value: dict[str, str]) -> dict[str, str]:
    if len(value) > 50:
        raise ValueError(f"at most 50 tags are allowed, got {len(value)}")
    for name, text in value.items():
        if not name or len(name) > 512:
            raise ValueError(f"tag name {name[:40]!r} must be 1-512 characters long")
        if len(text) > 256:
            raise ValueError(f"the value of tag {name!r} must be at most 256 characters long")
    return value


Tags = Annotated[dict[str, str], AfterValidator(_tags)]
"""ARM resource tags: ``{"team": "vision"}``."""


class WorkspaceCreateParameters(WireModel):
    """The PUT body of a workspace: ``{"location": "eastus", "tags": {...}}``."""

    location: Annotated[str, Field(min_length=1, max_length=90), AfterValidator(_location)]
    tags: Tags | None = None


class WorkspaceUpdateParameters(WireModel):
    """The PATCH body of a workspace: only its tags change (absent = no change)."""

    tags: Tags | None = None

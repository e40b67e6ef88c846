"""Workspace PUT and PATCH bodies."""

from typing import Any

import pytest

from openbai.errors import SpecError
from openbai.spec import WorkspaceCreateParameters, WorkspaceUpdateParameters, parse


def test_create_with_location_and_tags() -> None:
    workspace = parse(WorkspaceCreateParameters, {"location": "eastus", "tags": {"team": "vision"}})

    assert workspace.to_wire() == {"location": "eastus", "tags": {"team": "vision"}}


@pytest.mark.parametrize(
    ("data", "target"),
    [
        ({}, "location"),
        ({"location": "east us"}, "location"),
        ({"location": "eastus", "tags": {"team": 1}}, "tags.team"),
        ({"location": "eastus", "tags": {f"t{i}": "" for i in range(51)}}, "tags"),
    ],
)
def test_bad_workspaces(data: dict[str, Any], target: str) -> None:
    with pytest.raises(SpecError) as info:
        parse(WorkspaceCreateParameters, data)

    assert info.value.target == target


def test_update_changes_only_tags() -> None:
    assert parse(WorkspaceUpdateParameters, {"tags": {"a": "b"}}).tags == {"a": "b"}
    assert parse(WorkspaceUpdateParameters, {"location": "ignored"}).to_wire() == {}

"""Volume names follow Azure's container and share naming rules."""

from __future__ import annotations

import pytest

from openbai.errors import SpecError
from openbai.storage.names import check_volume_name


@pytest.mark.parametrize("name", ["abc", "a-b-c", "0data", "x" * 63, "logs-2018"])
def test_valid(name: str) -> None:
    assert check_volume_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "ab", "x" * 64, "Data", "-abc", "abc-", "a--b", "a_b", "a.b", "a b", "é-ab"]
)
def test_invalid(name: str) -> None:
    with pytest.raises(SpecError) as info:
        check_volume_name(name, field="containerName")
    assert info.value.target == "containerName"

"""The API's JSON bodies (orjson) are the bytes Starlette's json.dumps wrote, and what orjson
refuses is still written."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.responses import JSONResponse as StarletteJSONResponse

from openbai.http.json_response import JSONResponse

CASES: list[Any] = [
    {"name": "j1", "properties": {"nodeCount": 1, "ratio": 0.1, "big": 2**63 - 1, "none": None}},
    {"ünïcode": '✓ \u2028 \\ " \n', "nested": [[{"a": []}], {}], "tiny": 5e-324, "t": True},
    {"beyond 64 bits": 2**70 + 1, "negative": -(2**63) - 1},  # orjson refuses these
    [1, "two", 3.5],
]


@pytest.mark.parametrize("content", CASES)
def test_bodies_are_starlettes(content: Any) -> None:
    assert JSONResponse(content).body == StarletteJSONResponse(content).body

"""``PUT .../jobs/{j}`` refuses with 400 and the field as ``error.target`` what a job could
never run with, instead of accepting it and failing on the node with an InternalError."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import TestClient
from .support import Arm, job_body


@pytest.mark.parametrize(
    ("properties", "target"),
    [
        ({"stdOutErrPathPrefix": "/tmp/outside"}, "properties.stdOutErrPathPrefix"),
        (
            {"stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs/../.."},
            "properties.stdOutErrPathPrefix",
        ),
        (
            {"outputDirectories": [{"id": "OUT", "pathPrefix": "$AZ_BATCHAI_JOB_TEMP"}]},
            "properties.outputDirectories[0].pathPrefix",
        ),
        (
            {"environmentVariables": [{"name": "BIG", "value": "x" * 128 * 1024}]},
            "properties.environmentVariables[0].value",
        ),
        (
            {"secrets": [{"name": "KEY", "value": "a\u0000b"}]},
            "properties.secrets[0].value",
        ),
        (
            {"constraints": {"maxWallClockTime": "PT99999999999999999999S"}},
            "properties.constraints.maxWallClockTime",
        ),
        ({"nodeCount": None}, "properties.nodeCount"),
    ],
)
def test_what_would_fail_at_run_time_is_a_400_naming_the_field(
    client: TestClient, ws: Arm, logs_share: str, properties: dict[str, Any], target: str
) -> None:
    body = job_body("true", **properties)
    if body["properties"]["nodeCount"] is None:
        del body["properties"]["nodeCount"]
    url = ws.rg("workspaces", "ws", "experiments", "exp", "jobs", "bad")
    response = client.put(url, json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["target"] == target
    assert error["code"] == "InvalidParameter"
    assert "a\u0000b" not in response.text
    assert client.get(url).status_code == 404

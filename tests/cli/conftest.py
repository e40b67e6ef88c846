"""``any_bai``: the ``bai`` fixture in process, and again through a real ``bai serve``
(``--server``), so each command is checked both ways."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from api.support import start_server
from conftest import Bai


@pytest.fixture(params=["embedded", "server"])
def any_bai(request: pytest.FixtureRequest, bai: Bai) -> Iterator[Bai]:
    if request.param == "embedded":
        yield bai
        return
    server = start_server(bai.home, bai.env)
    try:
        yield Bai(bai.home, {**bai.env, "BAI_SERVER": server.url, "BAI_TOKEN": server.token})
    finally:
        server.stop()


@pytest.fixture
def ws(any_bai: Bai) -> Bai:
    """Workspace ``ws``, experiment ``exp``, a 2-node cluster ``c1`` and share acct/logs."""
    any_bai("workspace", "create", "-n", "ws")
    any_bai("experiment", "create", "-w", "ws", "-n", "exp")
    any_bai("cluster", "create", "-w", "ws", "-n", "c1", "--nodes", "2")
    any_bai("storage", "account", "create", "-n", "acct")
    any_bai("storage", "share", "create", "--account", "acct", "-n", "logs")
    return any_bai


def job_file(tmp_path: Path, command: str) -> str:
    """A job.json running ``command`` on one node, its stdout/stderr in share acct/logs."""
    path = tmp_path / "job.json"
    path.write_text(
        json.dumps(
            {
                "properties": {
                    "nodeCount": 1,
                    "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
                    "mountVolumes": {
                        "azureFileShares": [
                            {
                                "azureFileUrl": "https://acct.file.core.windows.net/logs",
                                "relativeMountPath": "logs",
                            }
                        ]
                    },
                    "customToolkitSettings": {"commandLine": command},
                }
            }
        )
    )
    return str(path)


def submit(bai: Bai, tmp_path: Path, name: str, command: str, *, cluster: str = "c1") -> None:
    """``bai job create`` of a job running ``command`` (see :func:`job_file`) in ws/exp."""
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", cluster, "-n", name,
        "-f", job_file(tmp_path, command))  # fmt: skip

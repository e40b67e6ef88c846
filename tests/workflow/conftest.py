"""Fixtures for whole-workflow tests: an embedded account laid out like the Batch AI recipes
(shares ``logs`` and ``scripts``, container ``data``) and a helper to write job files."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Bai
from nfs_fixture import missing


@pytest.fixture
def recipes(workspace: Bai, tmp_path: Path) -> Bai:
    """``workspace`` plus account ``acct`` with shares logs/scripts and container data."""
    bai = workspace
    bai("storage", "account", "create", "-n", "acct")
    for share in ("logs", "scripts"):
        bai("storage", "share", "create", "--account", "acct", "-n", share)
    bai("storage", "container", "create", "--account", "acct", "-n", "data")
    return bai


def storage_dir(bai: Bai, account: str, kind: str, volume: str) -> Path:
    """Where an embedded volume keeps its files (to check what jobs wrote)."""
    return bai.home / "storage" / account / kind / volume


def write_job(tmp_path: Path, properties: dict[str, Any], name: str = "job.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps({"properties": properties}))
    return str(path)


LOGS_AND_SCRIPTS = {
    "azureFileShares": [
        {"azureFileUrl": "https://acct.file.core.windows.net/logs", "relativeMountPath": "logs"},
        {
            "azureFileUrl": "https://acct.file.core.windows.net/scripts",
            "relativeMountPath": "scripts",
        },
    ],
    "azureBlobFileSystems": [
        {"accountName": "acct", "containerName": "data", "relativeMountPath": "data"}
    ],
}


def custom_job(command: str, **extra: Any) -> dict[str, Any]:
    return {
        "nodeCount": 1,
        "customToolkitSettings": {"commandLine": command},
        "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
        "mountVolumes": LOGS_AND_SCRIPTS,
        **extra,
    }


def toolkit_job(**properties: Any) -> dict[str, Any]:
    """A job of another toolkit than the custom one, named in ``properties`` (for example
    ``pyTorchSettings={...}``), on :func:`custom_job`'s volumes and with its logs."""
    job = custom_job("", **properties)
    del job["customToolkitSettings"]
    return job


def nfs_job(file_server_id: str, command: str, **extra: Any) -> dict[str, Any]:
    """A job mounting the file server ``file_server_id``'s ``/mnt/data/shared`` at
    ``$AZ_BATCHAI_JOB_MOUNT_ROOT/nfs``, read-write, its stdout and stderr there."""
    return custom_job(
        command,
        stdOutErrPathPrefix="$AZ_BATCHAI_JOB_MOUNT_ROOT/nfs",
        mountVolumes={
            "fileServers": [
                {
                    "fileServer": {"id": file_server_id},
                    "relativeMountPath": "nfs",
                    "sourceDirectory": "/mnt/data/shared",
                    "mountOptions": "rw",
                }
            ]
        },
        **extra,
    )


#: ``bai file-server create`` flags of a small file server, after ``-w WS -n NAME``
FILE_SERVER = ("--disk-count", "1", "--disk-size", "10", "-s", "STANDARD_D14",
               "--storage-sku", "Standard_LRS")  # fmt: skip


@pytest.fixture
def nfs_ready() -> None:
    """ganesha and libnfs are installed (in CI they must be; elsewhere the test is skipped)."""
    reason = missing()
    if reason is not None:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(reason)


@pytest.fixture
def taken_port() -> Iterator[list[socket.socket]]:
    """Listening sockets a test opens on ports it takes from a file server (closed after)."""
    sockets: list[socket.socket] = []
    yield sockets
    for s in sockets:
        s.close()

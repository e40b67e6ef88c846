"""Fixtures for whole-workflow tests: an embedded account laid out like the Batch AI recipes
(shares ``logs`` and ``scripts``, container ``data``) and a helper to write job files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Bai


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

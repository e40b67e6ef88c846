"""Download links of a job's files on a file server and on an unmanaged NFS file system: such
a volume has no storage account, and its link names it by what it is (``fileserver:RG/WS/NAME``
and the export ``/mnt/data``; the mount command and its export), slashes included."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import pytest
from nfs_fixture import Nfs, missing, nfs_server

from openbai.mounts.registry import fuse_available

from .conftest import TestClient
from .support import Arm, wait_for_job
from .test_workspaces import FILE_SERVER

__all__ = ["nfs_server"]  # a fixture

pytestmark = pytest.mark.skipif(not fuse_available(), reason="no FUSE")


@pytest.fixture
def file_server(client: TestClient, ws: Arm) -> Any:
    reason = missing()
    if reason is not None:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(reason)
    url = ws.rg("workspaces", "ws", "fileServers", "nfs")
    created = client.put(url, json=FILE_SERVER)
    assert created.status_code == 200, created.text
    yield created.json()
    client.delete(url)


def _model_links(client: TestClient, ws: Arm, job: str, volumes: dict[str, Any]) -> Any:
    url = ws.rg("workspaces", "ws", "experiments", "exp", "jobs", job)
    body = {
        "properties": {
            "cluster": {"id": "c1"},
            "nodeCount": 1,
            "customToolkitSettings": {
                "commandLine": f"printf 'written by {job}' > $AZ_BATCHAI_OUTPUT_MODEL/model.txt"
            },
            "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/nfs",
            "outputDirectories": [{"id": "MODEL", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/nfs"}],
            "mountVolumes": volumes,
        }
    }
    assert client.put(url, json=body).status_code == 200
    done = wait_for_job(client, url, timeout=120)
    assert done["properties"]["executionState"] == "succeeded", done["properties"]
    listed = client.post(
        ws.rg(
            "workspaces", "ws", "experiments", "exp", "jobs", job, "listOutputFiles",
            query="outputdirectoryid=MODEL",
        )
    )  # fmt: skip
    assert listed.status_code == 200, listed.text
    return {f["name"]: f["downloadUrl"] for f in listed.json()["value"]}


def test_download_links_fetch_files_on_a_file_server_and_an_unmanaged_nfs(
    client: TestClient, anonymous: TestClient, ws: Arm, file_server: Any, nfs_server: Nfs
) -> None:
    on_server = _model_links(
        client,
        ws,
        "onserver",
        {
            "fileServers": [
                {
                    "fileServer": {"id": file_server["id"]},
                    "relativeMountPath": "nfs",
                    "mountOptions": "rw",
                }
            ]
        },
    )
    fetched = anonymous.get(on_server["model.txt"])
    assert fetched.status_code == 200, fetched.text
    assert fetched.content == b"written by onserver"
    ranged = anonymous.get(on_server["model.txt"], headers={"Range": "bytes=11-"})
    assert ranged.status_code == 206 and ranged.content == b"onserver"

    # your own NFS server (the installation's file servers are mounted through fileServers)
    command = (
        f"mount -t nfs -o vers=3,port={nfs_server.port},mountport={nfs_server.mount_port}"
        f" {nfs_server.host}:{nfs_server.export}"
    )
    unmanaged = _model_links(
        client,
        ws,
        "unmanaged",
        {"unmanagedFileSystems": [{"mountCommand": command, "relativeMountPath": "nfs"}]},
    )
    fetched = anonymous.get(unmanaged["model.txt"])
    assert fetched.status_code == 200, fetched.text
    assert fetched.content == b"written by unmanaged"

    # such a link's account and volume are signed like the rest of it
    parts = urlsplit(on_server["model.txt"])
    account, _, volume = parts.path.split("/")[3:6]
    assert account.startswith("~") and volume.startswith("~")  # not plain names
    changed = parts._replace(path=parts.path.replace(volume, volume + "AA", 1)).geturl()
    assert anonymous.get(changed).status_code == 403
    changed = parts._replace(path=parts.path.replace(account, "~!!", 1)).geturl()
    assert anonymous.get(changed).status_code == 403

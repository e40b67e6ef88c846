"""What a job's or cluster's ``mountVolumes`` may reach through the REST API: a GlusterFS
mount (its client runs as root, loading the translators the named server's volume file
lists) is for the installation's owner only, and an account name must be a storage
account's, never one of the names openbai gives file servers and mount commands internally."""

from __future__ import annotations

from typing import Any

import pytest

from openbai.installation import App
from openbai.services.tokens import Role

from .conftest import TestClient
from .support import Arm, job_body
from .test_roles import make

GLUSTER = {"mountCommand": "mount -t glusterfs 127.0.0.1:/vol", "relativeMountPath": "g"}


def _with_logs(**volumes: Any) -> dict[str, Any]:
    """``mountVolumes`` with job_body's logs share and ``volumes``."""
    logs = job_body("true")["properties"]["mountVolumes"]["azureFileShares"]
    return {"azureFileShares": logs, **volumes}


def _cluster(volumes: dict[str, Any]) -> dict[str, Any]:
    return {
        "properties": {
            "scaleSettings": {"manual": {"targetNodeCount": 1}},
            "nodeSetup": {"mountVolumes": volumes},
        }
    }


def test_a_glusterfs_mount_is_for_the_installations_owner_only(
    client: TestClient, service: App, ws: Arm, logs_share: str
) -> None:
    job_url = ws.rg("workspaces", "ws", "experiments", "exp", "jobs", "g")
    cluster_url = ws.rg("workspaces", "ws", "clusters", "g")
    job = job_body("true", mountVolumes=_with_logs(unmanagedFileSystems=[GLUSTER]))
    cluster = _cluster({"unmanagedFileSystems": [GLUSTER]})
    for token in (
        make(service, "contributor", Role.CONTRIBUTOR),
        make(service, "ws-owner", Role.OWNER, "rg/ws"),
    ):
        for url, body, field in [
            (job_url, job, "properties.mountVolumes"),
            (cluster_url, cluster, "properties.nodeSetup.mountVolumes"),
        ]:
            refused = client.put(url, headers=token, json=body)
            assert refused.status_code == 403, refused.text
            error = refused.json()["error"]
            assert error["code"] == "AuthorizationFailed"
            assert error["target"] == f"{field}.unmanagedFileSystems[0].mountCommand"
            assert "GlusterFS" in error["message"]
            assert client.get(url).status_code == 404  # nothing made
    # an NFS mount is not the owner's alone
    contributor = make(service, "nfs-contributor", Role.CONTRIBUTOR)
    nfs = {"mountCommand": "mount -t nfs 192.0.2.1:/export", "relativeMountPath": "n"}
    nfs_cluster = ws.rg("workspaces", "ws", "clusters", "n")
    made = client.put(
        nfs_cluster, headers=contributor, json=_cluster({"unmanagedFileSystems": [nfs]})
    )
    assert made.status_code == 200, made.text
    # the installation's owner (an owner token limited to no workspace) may
    assert client.put(cluster_url, json=cluster).status_code == 200
    assert client.put(job_url, json=job).status_code in (200, 201)


@pytest.mark.parametrize("account", ["fileserver:rg/other/fs", "mount:mount -t nfs h:/x", "a:b"])
def test_an_account_name_is_a_storage_accounts(
    client: TestClient, service: App, ws: Arm, logs_share: str, account: str
) -> None:
    """``fileserver:RG/WS/NAME`` would mount another workspace's file server past the
    workspace check of ``fileServers`` (and its delete's FileServerInUse guard)."""
    other = ws.rg("workspaces", "other")
    assert client.put(other, json={"location": "local"}).status_code == 200
    fs_url = ws.rg("workspaces", "other", "fileServers", "fs")
    # no file server needs to exist: the name is refused before anything is looked up
    blob = {"accountName": account, "containerName": "/mnt/data", "relativeMountPath": "theirs"}
    share = {
        "accountName": account,
        "azureFileUrl": "https://acct.file.core.windows.net/logs",
        "relativeMountPath": "theirs",
    }
    job_url = ws.rg("workspaces", "ws", "experiments", "exp", "jobs", "theirs")
    cluster_url = ws.rg("workspaces", "ws", "clusters", "theirs")
    for volumes, field in [
        ({"azureBlobFileSystems": [blob]}, "azureBlobFileSystems[0].accountName"),
        ({"azureFileShares": [share]}, "azureFileShares[0].accountName"),
    ]:
        for url, body, root in [
            (job_url, job_body("true", mountVolumes=volumes), "mountVolumes"),
            (cluster_url, _cluster(volumes), "nodeSetup.mountVolumes"),
        ]:
            refused = client.put(url, json=body)
            assert refused.status_code == 400, refused.text
            error = refused.json()["error"]
            assert error["target"] == f"properties.{root}.{field}", error
            assert "storage account name" in error["message"]
            assert client.get(url).status_code == 404  # nothing made
    assert client.get(fs_url).status_code == 404

"""azure-mgmt-batchai's test_mgmt_batchai_file_server.py, its flow against ``bai serve``: a
file server (a real nfs-ganesha), two clusters mounting it, jobs on the first (on the host and
in a container) writing there and a job on the second reading what they wrote."""

from __future__ import annotations

import os
import re
from typing import Any

import psutil
import pytest
from azure.core.rest import HttpRequest
from azure.mgmt.batchai import models as m
from nfs_fixture import missing
from podman_fixture import Podman, podman_fixture  # noqa: F401  (the fixture "podman")

from openbai.mounts.registry import fuse_available

from .conftest import RG, WS, poll
from .flows import create_cluster, create_custom_job, job_files, wait_for_job, wait_for_nodes

#: what keeps the flow from running here; CI installs everything it needs, so there it fails
_MISSING = missing() or (None if fuse_available() else "no FUSE")
pytestmark = pytest.mark.skipif(
    _MISSING is not None and not os.environ.get("CI"), reason=str(_MISSING)
)

SERVER = "fileserver"
API_VERSION = "2018-05-01"
#: the vendor's Helpers.RE_ID_ADDRESS
IP_ADDRESS = re.compile(r"\d+\.\d+\.\d+\.\d+")


def _create_file_server(client: Any) -> Any:
    """The vendor's Helpers.create_file_server: two 10 GB disks on a STANDARD_D14."""
    client.workspaces.begin_create(RG, WS, m.WorkspaceCreateParameters(location="local")).result()
    params = m.FileServerCreateParameters(
        vm_size="STANDARD_D14",
        ssh_configuration=m.SshConfiguration(
            user_account_settings=m.UserAccountSettings(
                admin_user_name="demoUser", admin_user_password="Dem0Pa$$w0rd"
            )
        ),
        data_disks=m.DataDisks(
            disk_size_in_gb=10, disk_count=2, storage_account_type="Standard_LRS"
        ),
    )
    return client.file_servers.begin_create(RG, WS, SERVER, params).result()


def _get(client: Any) -> Any:
    """The SDK's final version (7.0.0) has no file_servers.get: the vendor's test ran on one
    that had; the list holds the same resource."""
    [server] = [f for f in client.file_servers.list_by_workspace(RG, WS) if f.name == SERVER]
    return server


def _delete(client: Any, server_id: str) -> None:
    """file_servers.delete, missing from the SDK's final version too: the same REST call,
    through the client's own pipeline (its authentication included)."""
    request = HttpRequest("DELETE", f"{server_id}?api-version={API_VERSION}")
    response = client._send_request(request)
    assert response.status_code in (200, 202, 204), response.text()


def _nfs(server: Any) -> list[Any]:
    return [
        m.FileServerReference(
            file_server=m.ResourceId(id=server.id), relative_mount_path="nfs", mount_options="rw"
        )
    ]


def test_file_server(client: Any, podman: Podman) -> None:
    assert _MISSING is None, f"CI runs the vendor's file server flow: {_MISSING}"
    server = _create_file_server(client)
    cluster1 = create_cluster(client, "cluster1", 1, file_servers=_nfs(server))
    cluster2 = create_cluster(client, "cluster2", 1, file_servers=_nfs(server))
    # the file server is reported, and becomes available
    assert [f.name for f in client.file_servers.list_by_workspace(RG, WS)] == [SERVER]
    server = poll(
        f"file server {SERVER} succeeded",
        lambda: _get(client),
        lambda f: f.provisioning_state == "succeeded",
    )
    # its mount settings are reported
    assert IP_ADDRESS.fullmatch(server.mount_settings.file_server_public_ip)
    assert IP_ADDRESS.fullmatch(server.mount_settings.file_server_internal_ip)
    assert server.mount_settings.mount_point == "/mnt/data"
    wait_for_nodes(client, "cluster1", 1)
    wait_for_nodes(client, "cluster2", 1)

    # publishers on the first cluster: on the host, then in a container
    create_custom_job(
        client,
        cluster1.id,
        "host_publisher",
        1,
        "echo hi from host > $AZ_BATCHAI_MOUNT_ROOT/nfs/host.txt",
    )
    assert wait_for_job(client, "host_publisher") == "succeeded"
    container = m.ContainerSettings(image_source_registry=m.ImageSourceRegistry(image=podman.image))
    create_custom_job(
        client,
        cluster1.id,
        "container_publisher",
        1,
        "echo hi from container >> $AZ_BATCHAI_MOUNT_ROOT/nfs/container.txt",
        container=container,
    )
    assert wait_for_job(client, "container_publisher") == "succeeded"

    # the consumer on the second cluster reads both
    create_custom_job(
        client,
        cluster2.id,
        "consumer",
        1,
        "cat $AZ_BATCHAI_MOUNT_ROOT/nfs/host.txt; cat $AZ_BATCHAI_MOUNT_ROOT/nfs/container.txt",
    )
    assert wait_for_job(client, "consumer") == "succeeded"
    stdouterr = job_files(client, "consumer", "stdouterr")  # and openbai's execution.log
    assert stdouterr["stdout.txt"] == "hi from host\nhi from container\n"
    assert stdouterr["stderr.txt"] == ""

    client.clusters.begin_delete(RG, WS, "cluster1").result()
    client.clusters.begin_delete(RG, WS, "cluster2").result()
    pid = _ganesha_pid(client)
    _delete(client, server.id)
    poll(
        f"file server {SERVER} deleted",
        lambda: list(client.file_servers.list_by_workspace(RG, WS)),
        lambda servers: servers == [],
    )
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def _ganesha_pid(client: Any) -> int:
    """The file server's NFS daemon (one ganesha per file server, named by its state dir)."""
    found = [
        p.pid
        for p in psutil.process_iter(["name", "cmdline"])
        if (p.info["name"] or "").startswith("ganesha")
        and any(f"/file-servers/{RG}/{WS}/{SERVER}/" in arg for arg in p.info["cmdline"] or [])
    ]
    assert len(found) == 1, found
    return found[0]

"""azure-cli's batchai scenario tests (test_batchai_scenario.py, test_batchai_live.py), their
flows through ``bai`` (az's commands and flags): workspaces, clusters from files and from
flags, auto-storage, setup tasks, manual and auto scale, jobs with cluster- and job-level
file systems, their files, node exec, usages, deletion."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api.support import BAI
from conftest import Bai
from nfs_fixture import missing
from polling import wait_until


def test_batchai_scenario(bai: Bai, tmp_path: Path) -> None:
    bai("workspace", "create", "-n", "ws", "-l", "local")
    bai("experiment", "create", "-w", "ws", "-n", "exp")
    bai("cluster", "create", "-w", "ws", "-n", "cluster", "--nodes", "1", "--use-auto-storage")
    cluster = wait_until(
        lambda: (
            (c := bai.json("cluster", "show", "-w", "ws", "-n", "cluster"))
            and c["nodeStateCounts"]["idleNodeCount"] == 1
            and c
        ),
        "an idle node",
        timeout=90,
    )
    assert cluster["vmSize"] == "STANDARD_NC6"  # az's default VM size
    nodes = bai.json("cluster", "node", "list", "-w", "ws", "-c", "cluster")
    assert [n["nodeId"] for n in nodes] == ["cluster-0"]
    job = tmp_path / "job.json"
    job.write_text(
        json.dumps(
            {
                "properties": {
                    "nodeCount": 1,
                    "stdOutErrPathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/autoafs",
                    "outputDirectories": [
                        {"id": "OUTPUT", "pathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/autoafs"}
                    ],
                    "customToolkitSettings": {
                        "commandLine": "echo hi | tee $AZ_BATCHAI_OUTPUT_OUTPUT/result.txt"
                    },
                }
            }
        )
    )
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", "cluster", "-n", "job", "-f", str(job))
    bai("job", "wait", "-w", "ws", "-e", "exp", "-n", "job")
    assert bai.json("job", "show", "-w", "ws", "-e", "exp", "-n", "job")["executionState"] == (
        "succeeded"
    )
    stdouterr = bai.json("job", "file", "list", "-w", "ws", "-e", "exp", "-j", "job")
    # the golden example's listing: exactly these three, stdout "hi\n"
    sizes = {f["name"]: f["contentLength"] for f in stdouterr}
    assert sizes["stdout.txt"] == 3 and sizes["stderr.txt"] == 0
    assert sorted(f["name"] for f in stdouterr) == ["execution.log", "stderr.txt", "stdout.txt"]
    outputs = bai.json("job", "file", "list", "-w", "ws", "-e", "exp", "-j", "job", "-d", "OUTPUT")
    assert [f["name"] for f in outputs] == ["result.txt"]
    bai("job", "delete", "-w", "ws", "-e", "exp", "-n", "job", "-y")
    assert bai.json("job", "list", "-w", "ws", "-e", "exp") == []
    bai("cluster", "delete", "-w", "ws", "-n", "cluster", "-y")
    assert bai.json("cluster", "list", "-w", "ws") == []


# -- the rest of azure-cli's scenario tests (tests/latest/test_batchai_scenario.py) and its live
# node exec test (test_batchai_live.py), flow by flow. Their data files are copied below as
# az read them, but for two things openbai does differently on purpose: no job runs in the
# ``ubuntu`` image (pulling it needs the internet; containers have tests of their own), and
# every stdOutErrPathPrefix is on a mounted volume (openbai refuses a path on no volume, where
# Batch AI wrote to the node's disk, which nobody could read once the node was gone).

KEY = "embedded-accounts-need-no-key"
CUSTOM_JOB = {
    "stdOutErrPathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/azfiles",
    "outputDirectories": [
        {
            "id": "OUTPUT",
            "pathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/azfiles",
            "pathSuffix": "output",
            "type": "custom",
        }
    ],
    "nodeCount": 1,
    "toolType": "custom",
    "customToolkitSettings": {"commandLine": "echo hi | tee $AZ_BATCHAI_OUTPUT_OUTPUT/result.txt"},
}
AZURE_FILES = {
    "azureFileShares": [
        {
            "accountName": "<AZURE_BATCHAI_STORAGE_ACCOUNT>",
            "azureFileUrl": "https://<AZURE_BATCHAI_STORAGE_ACCOUNT>.file.core.windows.net/share",
            "credentialsInfo": {"accountKey": "<AZURE_BATCHAI_STORAGE_KEY>"},
            "directoryMode": "0777",
            "fileMode": "0777",
            "relativeMountPath": "azfiles",
        }
    ]
}
USER = {"adminUserName": "DemoUser", "adminUserPassword": "DemoPa$$w0rd"}
SIMPLE_CLUSTER = {
    "location": "eastus",
    "properties": {"vmSize": "STANDARD_D1", "scaleSettings": {"manual": {"targetNodeCount": 1}}},
}


def _data_file(tmp_path: Path, name: str, document: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return str(path)


@pytest.fixture
def az(bai: Bai, tmp_path: Path) -> Bai:
    """``_given_configured_environment``: an account whose share ``share`` (and container
    ``container``) the flows mount, named in the environment as az's tests named theirs."""
    bai("storage", "account", "create", "-n", "acct")
    bai("storage", "share", "create", "--account", "acct", "-n", "share")
    bai("storage", "container", "create", "--account", "acct", "-n", "container")
    (tmp_path / "key.txt").write_text("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ demo@openbai\n")
    env = {"AZURE_BATCHAI_STORAGE_ACCOUNT": "acct", "AZURE_BATCHAI_STORAGE_KEY": KEY}
    return Bai(bai.home, {**bai.env, **env})


def _check_mounts(cluster: dict[str, Any], account: str, share: str, mount: str) -> None:
    afs = cluster["nodeSetup"]["mountVolumes"]["azureFileShares"][0]
    assert afs["accountName"] == account
    assert afs["azureFileUrl"] == f"https://{account}.file.core.windows.net/{share}"
    assert afs["relativeMountPath"] == mount
    assert (afs.get("credentialsInfo") or {}).get("accountKey") is None


def _check_user(cluster: dict[str, Any]) -> None:
    assert cluster["userAccountSettings"]["adminUserName"] == "DemoUser"
    assert cluster["userAccountSettings"].get("adminUserPassword") is None


def _job_succeeded(az: Bai, name: str) -> dict[str, Any]:
    az("job", "wait", "-w", "workspace", "-e", "experiment", "-n", name)
    job = az.json("job", "show", "-w", "workspace", "-e", "experiment", "-n", name)
    assert job["name"] == name
    assert job["customToolkitSettings"]["commandLine"] == (
        "echo hi | tee $AZ_BATCHAI_OUTPUT_OUTPUT/result.txt"
    )
    assert job["executionState"] == "succeeded", job["executionInfo"]
    assert job["executionInfo"]["exitCode"] == 0
    assert job["executionInfo"].get("errors") is None
    return dict(job)


def _check_job_files(az: Bai, name: str, *directory: str) -> None:
    """The job's stdouterr files (``-d=stdouterr``, or as given) and its OUTPUT directory."""
    listed = az.json(
        "job",
        "file",
        "list",
        "-w",
        "workspace",
        "-e",
        "experiment",
        "-j",
        name,
        *(directory or ("-d=stdouterr",)),
    )
    assert sorted(f["name"] for f in listed) == ["execution.log", "stderr.txt", "stdout.txt"]
    assert [f["contentLength"] for f in listed if f["name"] == "stdout.txt"] == [3]
    assert [f["contentLength"] for f in listed if f["name"] == "stderr.txt"] == [0]
    assert listed[0]["downloadUrl"] and listed[1]["downloadUrl"]
    output = az.json(
        "job", "file", "list", "-w", "workspace", "-e", "experiment", "-j", name, "-d=OUTPUT"
    )
    assert [f["name"] for f in output] == ["result.txt"]
    assert output[0]["contentLength"] == 3 and output[0]["downloadUrl"]


def _cluster_show(az: Bai, name: str = "cluster") -> dict[str, Any]:
    return dict(az.json("cluster", "show", "-w", "workspace", "-n", name))


def _wait_idle_nodes(az: Bai, count: int) -> dict[str, Any]:
    """Where az slept NODE_STARTUP_TIME: poll for the nodes, with a deadline."""
    return dict(
        wait_until(
            lambda: (c := _cluster_show(az))["nodeStateCounts"]["idleNodeCount"] == count and c,
            f"{count} idle node(s)",
            timeout=90,
        )
    )


def test_batchai_manual_scale_scenario(az: Bai, tmp_path: Path) -> None:
    az("workspace", "create", "-n", "workspace")
    assert len(az.json("workspace", "list")) == 1
    cluster_file = _data_file(
        tmp_path,
        "cluster_with_azure_files.json",
        {
            "location": "southcentralus",
            "properties": {
                "nodeSetup": {"mountVolumes": AZURE_FILES},
                "userAccountSettings": USER,
                "vmSize": "STANDARD_D1",
                "scaleSettings": {"manual": {"targetNodeCount": 1}},
            },
        },
    )
    cluster = az.json("cluster", "create", "-w", "workspace", "-n", "cluster", "-f", cluster_file)
    assert cluster["name"] == "cluster"
    assert cluster["allocationState"] == "resizing"
    assert cluster["scaleSettings"]["manual"]["targetNodeCount"] == 1
    assert cluster["vmSize"] == "STANDARD_D1"
    _check_mounts(cluster, "acct", "share", "azfiles")
    _check_user(cluster)
    assert az.json("experiment", "create", "-w", "workspace", "-n", "experiment")["name"] == (
        "experiment"
    )
    assert len(az.json("experiment", "list", "-w", "workspace")) == 1
    job_file = _data_file(tmp_path, "custom_toolkit_job.json", {"properties": CUSTOM_JOB})
    create = ("job", "create", "-c", "cluster", "-w", "workspace", "-e", "experiment")
    job = az.json(*create, "-n", "job", "-f", job_file)
    assert job["name"] == "job"
    assert job["executionState"] == "queued"
    _job_succeeded(az, "job")
    _check_job_files(az, "job")

    az("cluster", "resize", "-w", "workspace", "-n", "cluster", "-t", "0")
    resized = wait_until(
        lambda: (c := _cluster_show(az))["currentNodeCount"] == 0 and c,
        "the cluster resized to 0",
        timeout=60,
    )
    assert resized["scaleSettings"]["manual"]["targetNodeCount"] == 0
    az("cluster", "resize", "-w", "workspace", "-n", "cluster", "-t", "1")
    az(*create, "-n", "job2", "-f", job_file)
    _job_succeeded(az, "job2")

    az("cluster", "delete", "-w", "workspace", "-n", "cluster", "-y")
    assert az.json("cluster", "list", "-w", "workspace") == []
    az("job", "delete", "-w", "workspace", "-e", "experiment", "-n", "job", "-y")
    az("job", "delete", "-w", "workspace", "-e", "experiment", "-n", "job2", "-y")
    assert az.json("job", "list", "-w", "workspace", "-e", "experiment") == []


def test_batchai_auto_scale_scenario(az: Bai, tmp_path: Path) -> None:
    az("workspace", "create", "-n", "workspace")
    cluster_file = _data_file(
        tmp_path,
        "auto_scale_cluster_with_azure_files.json",
        {
            "location": "eastus",
            "properties": {
                "nodeSetup": {"mountVolumes": AZURE_FILES},
                "userAccountSettings": USER,
                "vmSize": "STANDARD_D1",
                "scaleSettings": {"autoScale": {"minimumNodeCount": 0, "maximumNodeCount": 1}},
            },
        },
    )
    cluster = az.json("cluster", "create", "-w", "workspace", "-n", "cluster", "-f", cluster_file)
    assert cluster["name"] == "cluster"
    assert cluster["scaleSettings"]["autoScale"]["minimumNodeCount"] == 0
    assert cluster["scaleSettings"]["autoScale"]["maximumNodeCount"] == 1
    assert cluster["vmSize"] == "STANDARD_D1"
    _check_mounts(cluster, "acct", "share", "azfiles")
    _check_user(cluster)
    az("experiment", "create", "-w", "workspace", "-n", "experiment")
    job_file = _data_file(tmp_path, "custom_toolkit_job.json", {"properties": CUSTOM_JOB})
    job = az.json(
        "job", "create", "-c", "cluster", "-w", "workspace", "-e", "experiment", "-n", "job",
        "-f", job_file,
    )  # fmt: skip
    assert job["executionState"] == "queued"
    _job_succeeded(az, "job")
    # where az slept CLUSTER_RESIZE_TIME: the idle time is 1 s here (conftest)
    wait_until(
        lambda: _cluster_show(az)["currentNodeCount"] == 0, "the cluster scaled down", timeout=60
    )


def test_batchai_cluster_with_file_systems(az: Bai, tmp_path: Path) -> None:
    az("workspace", "create", "-n", "workspace")
    cluster = az.json(
        "cluster", "create", "-w", "workspace", "-n", "cluster",
        "-f", _data_file(tmp_path, "simple_cluster.json", SIMPLE_CLUSTER),
        "--afs-name", "share", "--bfs-name", "container",
        "-u", "DemoUser", "-k", str(tmp_path / "key.txt"),
    )  # fmt: skip
    _check_file_systems(cluster)
    _wait_idle_nodes(az, 1)


def _check_file_systems(cluster: dict[str, Any]) -> None:
    _check_mounts(cluster, "acct", "share", "afs")
    bfs = cluster["nodeSetup"]["mountVolumes"]["azureBlobFileSystems"][0]
    assert (bfs["accountName"], bfs["containerName"], bfs["relativeMountPath"]) == (
        "acct",
        "container",
        "bfs",
    )
    assert (bfs.get("credentialsInfo") or {}).get("accountKey") is None
    _check_user(cluster)


def test_batchai_config_less_cluster_with_file_systems(az: Bai, tmp_path: Path) -> None:
    az("workspace", "create", "-n", "workspace")
    cluster = az.json(
        "cluster", "create", "-w", "workspace", "-n", "cluster",
        "-i", "UbuntuLTS", "--vm-size", "STANDARD_D1", "--min", "1", "--max", "1",
        "-u", "DemoUser", "-k", str(tmp_path / "key.txt"),
        "--afs-name", "share", "--bfs-name", "container",
    )  # fmt: skip
    _check_file_systems(cluster)
    _wait_idle_nodes(az, 1)


def _auto_storage_account(az: Bai) -> str:
    accounts = az.json("storage", "account", "list")
    names = [a["name"] for a in accounts if a.get("resourceGroup") == "batchaiautostorage"]
    assert len(names) == 1, accounts
    return str(names[0])


def _check_auto_storage(cluster: dict[str, Any], account: str) -> None:
    _check_mounts(cluster, account, "batchaishare", "autoafs")
    bfs = cluster["nodeSetup"]["mountVolumes"]["azureBlobFileSystems"][0]
    assert (bfs["accountName"], bfs["containerName"], bfs["relativeMountPath"]) == (
        account,
        "batchaicontainer",
        "autobfs",
    )


def test_batchai_cluster_with_auto_storage(az: Bai, tmp_path: Path) -> None:
    az("workspace", "create", "-n", "workspace")
    cluster = az.json(
        "cluster", "create", "-w", "workspace", "-n", "cluster",
        "-i", "UbuntuLTS", "--vm-size", "STANDARD_D1", "-t", "0",
        "-u", "DemoUser", "-k", str(tmp_path / "key.txt"), "--use-auto-storage",
    )  # fmt: skip
    _check_auto_storage(cluster, _auto_storage_account(az))


def test_batchai_cluster_with_setup_command(az: Bai, tmp_path: Path) -> None:
    az("workspace", "create", "-n", "workspace")
    cluster = az.json(
        "cluster", "create", "-n", "cluster", "-w", "workspace", "-s", "STANDARD_D1", "-t", "0",
        "-u", "DemoUser", "-k", str(tmp_path / "key.txt"), "--use-auto-storage",
        "--setup-task", "echo hi", "--setup-task-output", "$AZ_BATCHAI_MOUNT_ROOT/autoafs",
    )  # fmt: skip
    assert cluster["nodeSetup"]["setupTask"]["commandLine"] == "echo hi"
    assert cluster["nodeSetup"]["setupTask"]["stdOutErrPathPrefix"] == (
        "$AZ_BATCHAI_MOUNT_ROOT/autoafs"
    )
    _check_auto_storage(cluster, _auto_storage_account(az))


def test_batchai_job_level_mounting_scenario(az: Bai, tmp_path: Path) -> None:
    az("workspace", "create", "-n", "workspace")
    az(
        "cluster", "create", "-w", "workspace", "-n", "cluster",
        "-f", _data_file(tmp_path, "simple_cluster.json", SIMPLE_CLUSTER),
        "-u", "DemoUser", "-k", str(tmp_path / "key.txt"),
    )  # fmt: skip
    az("experiment", "create", "-w", "workspace", "-n", "experiment")
    referencing = {
        "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/afs",
        "outputDirectories": [
            {
                "id": "OUTPUT",
                "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/bfs",
                "pathSuffix": "output",
                "type": "custom",
            }
        ],
        "nodeCount": 1,
        "toolType": "custom",
        "customToolkitSettings": {
            "commandLine": "echo hi | tee $AZ_BATCHAI_OUTPUT_OUTPUT/result.txt"
        },
    }
    with_file_systems = {
        **referencing,
        "mountVolumes": {
            "azureFileShares": [
                {
                    "azureFileUrl": "https://<AZURE_BATCHAI_STORAGE_ACCOUNT>.file.core.windows.net/share",
                    "relativeMountPath": "afs",
                }
            ],
            "azureBlobFileSystems": [
                {
                    "accountName": "<AZURE_BATCHAI_STORAGE_ACCOUNT>",
                    "containerName": "container",
                    "relativeMountPath": "bfs",
                }
            ],
        },
    }
    create = ("job", "create", "-c", "cluster", "-w", "workspace", "-e", "experiment")
    path = _data_file(tmp_path, "job_with_file_systems.json", {"properties": with_file_systems})
    az(*create, "-n", "job", "-f", path)
    _job_succeeded(az, "job")
    _check_job_files(az, "job", "-d", "stdouterr")
    path = _data_file(tmp_path, "job_referencing_file_systems.json", {"properties": referencing})
    az(*create, "-n", "job2", "-f", path, "--afs-name", "share", "--bfs-name", "container")
    _job_succeeded(az, "job2")
    _check_job_files(az, "job2", "-d", "stdouterr")


def test_batchai_usages(az: Bai) -> None:
    assert "Cluster" in az("list-usages", "-l", "eastus").stdout
    assert "Cluster" in az("list-usages", "-l", "eastus", "-o", "table").stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cluster_job_node_exec(az: Bai, tmp_path: Path) -> None:
    """test_batchai_live.py: a job waits on a port until a command run on its node with
    ``node exec`` writes to it (``nc``, not installed here, is Python's socket; az reached the
    node over SSH, openbai runs the command in the node's sandbox)."""
    az("workspace", "create", "-n", "workspace")
    az("experiment", "create", "-w", "workspace", "-n", "experiment")
    az(
        "cluster", "create", "-w", "workspace", "-n", "simple", "-s", "Standard_D1", "-t", "1",
        "-u", "alex", "--generate-ssh-keys", "--afs-name", "share",
    )  # fmt: skip
    port = _free_port()
    listen = (
        "import socket; s = socket.create_server(('127.0.0.1', {port})); c, _ = s.accept();"
        " print(c.recv(64).decode(), end='')"
    )
    send = f"python3 -c \"import socket; socket.create_connection(('localhost', {port})).sendall(b'hi')\""

    def job(name: str, command: str) -> str:
        props = {
            "stdOutErrPathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/afs",
            "toolType": "custom",
            "nodeCount": 1,
            "customToolkitSettings": {"commandLine": command},
        }
        return _data_file(tmp_path, f"{name}.json", {"properties": props})

    create = ("job", "create", "-w", "workspace", "-e", "experiment", "-c", "simple")
    # a job to know when the cluster is ready
    az(*create, "-n", "nop", "-f", job("nop_job", "true"))
    az("job", "wait", "-w", "workspace", "-e", "experiment", "-n", "nop")
    for name, how in (
        ("waiter1", ("cluster", "node", "exec", "-w", "workspace", "-c", "simple")),
        (
            "waiter2",
            ("job", "node", "exec", "-w", "workspace", "-e", "experiment", "-j", "waiter2"),
        ),
    ):
        code = f'python3 -c "{listen.format(port=port)}"'
        az(*create, "-n", name, "-f", job(f"{name}_waiting_on_port", code))

        def sent(how: tuple[str, ...] = how) -> bool:
            # where az slept 30 s: the command gets through once the job listens
            return node_exec(az, *how, "--exec", send).returncode == 0

        wait_until(sent, f"the port of {name} to take a connection", timeout=90)
        az("job", "wait", "-w", "workspace", "-e", "experiment", "-n", name)
        shown = az.json("job", "show", "-w", "workspace", "-e", "experiment", "-n", name)
        assert shown["executionState"] == "succeeded", shown["executionInfo"]
        out = az.json("job", "file", "list", "-w", "workspace", "-e", "experiment", "-j", name)
        assert [f["contentLength"] for f in out if f["name"] == "stdout.txt"] == [2]


def node_exec(az: Bai, *args: str) -> subprocess.CompletedProcess[str]:
    """A real ``bai`` process, as a user runs node exec (the command gets its terminal)."""
    env = {**os.environ, **az.env}
    return subprocess.run(
        [BAI, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


# -- the two flows of azure-cli's earlier scenario suite with a file server (NFS), in the
# workspace form of the later az commands (no -l: a workspace's resources take its location).
# az printed the SDK's attribute names camelCased (fileServerPublicIp, diskSizeInGb); bai
# prints the REST API's names (fileServerPublicIP, diskSizeInGB), as `bai serve` sends them.


@pytest.fixture
def az_nfs(az: Bai) -> Iterator[Bai]:
    reason = missing()
    if reason is not None:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(reason)
    az("workspace", "create", "-n", "workspace")
    yield az
    az("file-server", "delete", "-w", "workspace", "-n", "nfs", "-y")


def _check_nfs_cluster(cluster: dict[str, Any], user: str) -> None:
    _check_mounts(cluster, "acct", "share", "afs")
    assert cluster["userAccountSettings"]["adminUserName"] == user
    assert cluster["userAccountSettings"].get("adminUserPassword") is None
    assert cluster["nodeSetup"]["mountVolumes"]["fileServers"][0]["relativeMountPath"] == "nfs"


def test_batchai_cluster_with_nfs_and_azure_file_share(az_nfs: Bai, tmp_path: Path) -> None:
    az = az_nfs
    server_file = {
        "properties": {
            "dataDisks": {"diskSizeInGB": 10, "diskCount": 2, "storageAccountType": "Standard_LRS"},
            "sshConfiguration": {"userAccountSettings": USER},
            "vmSize": "STANDARD_D1",
        }
    }
    server = az.json(
        "file-server", "create", "-w", "workspace", "-n", "nfs",
        "-f", _data_file(tmp_path, "file_server.json", server_file),
    )  # fmt: skip
    assert server["name"] == "nfs"
    assert server["mountSettings"]["mountPoint"] == "/mnt/data"
    assert (server["dataDisks"]["diskCount"], server["dataDisks"]["diskSizeInGB"]) == (2, 10)
    cluster = az.json(
        "cluster", "create", "-w", "workspace", "-n", "cluster",
        "-f", _data_file(tmp_path, "simple_cluster.json", SIMPLE_CLUSTER),
        "--nfs", "nfs", "--afs-name", "share", "-u", "alex", "-k", str(tmp_path / "key.txt"),
    )  # fmt: skip
    _check_nfs_cluster(cluster, "alex")
    _wait_idle_nodes(az, 1)
    shown = az.json("file-server", "show", "-w", "workspace", "-n", "nfs")
    assert shown["mountSettings"]["fileServerPublicIP"]


def test_batchai_configless_cluster_and_nfs_creation(az_nfs: Bai) -> None:
    az = az_nfs
    az(
        "file-server", "create", "-w", "workspace", "-n", "nfs",
        "--vm-size", "STANDARD_D1", "--storage-sku", "Standard_LRS",
        "--disk-count", "2", "--disk-size", "10", "-u", "alex", "-p", "Password_123",
    )  # fmt: skip
    cluster = az.json(
        "cluster", "create", "-w", "workspace", "-n", "cluster",
        "--afs-name", "share", "--nfs", "nfs", "-i", "UbuntuLTS", "--vm-size", "STANDARD_D1",
        "--min", "1", "--max", "1", "-u", "alex", "-p", "Password_123",
    )  # fmt: skip
    _check_nfs_cluster(cluster, "alex")
    _wait_idle_nodes(az, 1)
    shown = az.json("file-server", "show", "-w", "workspace", "-n", "nfs")
    assert shown["mountSettings"]["fileServerPublicIP"]

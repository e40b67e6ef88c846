"""Clusters from flags and from cluster.json: sizes, auto-storage, setup task, resize."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import Bai
from polling import wait_until

from .conftest import custom_job, storage_dir, write_job


def test_cluster_from_flags_with_batch_ai_defaults(bai: Bai) -> None:
    bai("workspace", "create", "-n", "ws")
    cluster = bai.json(
        "cluster",
        "create",
        "-w",
        "ws",
        "-n",
        "c",
        "-s",
        "Standard_NC12",
        "-i",
        "UbuntuDSVM",
        "--min",
        "1",
        "--max",
        "3",
    )
    assert cluster["vmSize"] == "Standard_NC12"
    assert cluster["scaleSettings"] == {
        "autoScale": {"minimumNodeCount": 1, "maximumNodeCount": 3, "initialNodeCount": 0}
    }
    assert (
        cluster["virtualMachineConfiguration"]["imageReference"]["offer"]
        == "linux-data-science-vm-ubuntu"
    )
    # an auto-scale cluster starts at its minimum (or initial count) and grows for its jobs
    assert cluster["nodeStateCounts"]["idleNodeCount"] == 1
    assert cluster["provisioningState"] == "succeeded" and cluster["allocationState"] == "steady"
    plain = bai.json("cluster", "create", "-w", "ws", "-n", "plain")
    assert plain["scaleSettings"] == {
        "manual": {"targetNodeCount": 1, "nodeDeallocationOption": "requeue"}
    }
    assert plain["vmSize"] == "STANDARD_NC6"
    assert [c["name"] for c in bai.json("cluster", "list", "-w", "ws")] == ["c", "plain"]
    resized = bai.json("cluster", "resize", "-w", "ws", "-n", "plain", "-t", "4")
    assert resized["scaleSettings"]["manual"]["targetNodeCount"] == 4
    assert resized["allocationState"] == "resizing"
    wait_until(
        lambda: (
            bai.json("cluster", "show", "-w", "ws", "-n", "plain")["nodeStateCounts"][
                "idleNodeCount"
            ]
            == 4
        ),
        "the resized cluster's 4 idle nodes",
    )
    assert (
        "both --min and --max"
        in bai("cluster", "create", "-w", "ws", "-n", "x", "--min", "1", expect=2).stderr
    )
    bai("cluster", "delete", "-w", "ws", "-n", "plain", "-y")
    assert [c["name"] for c in bai.json("cluster", "list", "-w", "ws")] == ["c"]


def test_use_auto_storage_mounts_a_share_and_a_container_on_every_node(
    workspace: Bai, tmp_path: Path
) -> None:
    bai = workspace
    cluster = bai.json(
        "cluster", "create", "-w", "ws", "-n", "auto", "--nodes", "1", "--use-auto-storage"
    )
    volumes = cluster["nodeSetup"]["mountVolumes"]
    (share,) = volumes["azureFileShares"]
    (container,) = volumes["azureBlobFileSystems"]
    account = container["accountName"]
    assert account.startswith("bai") and len(account) == 15
    assert share["azureFileUrl"] == f"https://{account}.file.core.windows.net/batchaishare"
    assert (
        share["relativeMountPath"],
        container["relativeMountPath"],
        container["containerName"],
    ) == ("autoafs", "autobfs", "batchaicontainer")
    assert (
        bai.json("storage", "account", "show", "-n", account)["resourceGroup"]
        == "batchaiautostorage"
    )
    # a second auto-storage cluster reuses the account
    again = bai.json(
        "cluster", "create", "-w", "ws", "-n", "auto2", "--nodes", "1", "--use-auto-storage"
    )
    assert again["nodeSetup"]["mountVolumes"]["azureBlobFileSystems"][0]["accountName"] == account

    props = {
        "nodeCount": 1,
        "customToolkitSettings": {
            "commandLine": "ls $AZ_BATCHAI_MOUNT_ROOT; echo hi > $AZ_BATCHAI_MOUNT_ROOT/autobfs/from-job.txt"
        },
        "stdOutErrPathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/autoafs",
    }
    bai(
        "job",
        "create",
        "-w",
        "ws",
        "-e",
        "exp",
        "-c",
        "auto",
        "-n",
        "j",
        "-f",
        write_job(tmp_path, props),
    )
    job = bai.wait("j")
    assert job["executionState"] == "succeeded", job
    assert (
        bai("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "j", "-f", "stdout.txt").stdout
        == "autoafs\nautobfs\n"
    )
    assert (
        storage_dir(bai, account, "blob", "batchaicontainer") / "from-job.txt"
    ).read_text() == "hi\n"


def test_setup_task_runs_once_per_node_before_its_first_job(workspace: Bai, tmp_path: Path) -> None:
    bai = workspace
    bai("storage", "account", "create", "-n", "acct")
    bai("storage", "share", "create", "--account", "acct", "-n", "logs")
    cluster_json = tmp_path / "cluster.json"
    cluster_json.write_text(
        json.dumps(
            {
                "properties": {
                    "vmSize": "STANDARD_NC6",
                    "scaleSettings": {"manual": {"targetNodeCount": 2}},
                    "nodeSetup": {
                        "setupTask": {
                            "commandLine": "echo setup $GREETING $TOKEN >> $AZ_BATCHAI_MOUNT_ROOT/logs/setup-count.txt; echo ran",
                            "stdOutErrPathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/logs",
                            "environmentVariables": [{"name": "GREETING", "value": "hello"}],
                            "secrets": [{"name": "TOKEN", "value": "tok-123"}],
                        },
                        "mountVolumes": {
                            "azureFileShares": [
                                {
                                    "azureFileUrl": "https://acct.file.core.windows.net/logs",
                                    "relativeMountPath": "logs",
                                }
                            ]
                        },
                    },
                }
            }
        )
    )
    cluster = bai.json("cluster", "create", "-w", "ws", "-n", "prepared", "-f", str(cluster_json))
    assert "tok-123" not in json.dumps(cluster)
    props = {
        **custom_job("true"),
        "stdOutErrPathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/logs",
        "mountVolumes": None,
        "nodeCount": 2,
    }
    for name in ("first", "second"):
        bai(
            "job",
            "create",
            "-w",
            "ws",
            "-e",
            "exp",
            "-c",
            "prepared",
            "-n",
            name,
            "-f",
            write_job(tmp_path, props, f"{name}.json"),
        )
        job = bai.wait(name)
        assert job["executionState"] == "succeeded", bai.why(job)
    logs = storage_dir(bai, "acct", "file", "logs")
    assert (
        logs / "setup-count.txt"
    ).read_text() == "setup hello tok-123\n" * 2  # once on each of the two nodes
    # per-node output files carry the node id, under .../clusters/<cluster>/<cluster uuid>/
    outputs = list(logs.rglob("stdout-prepared-0.txt")) + list(logs.rglob("stdout-prepared-1.txt"))
    assert len(outputs) == 2 and all(p.read_text() == "ran\n" for p in outputs)
    assert "/workspaces/ws/clusters/prepared/" in str(outputs[0])


def test_a_sample_cluster_with_an_unmanaged_glusterfs_is_kept_as_written(
    workspace: Bai, samples: Path
) -> None:
    # accepted as Batch AI did: a mount a node cannot make fails the job at start, naming the
    # command (AZFMountError, tests/workflow/test_nfs.py)
    snippet = samples / "doc-snippets" / "cluster__unmanaged_glusterfs_subnet.json"
    workspace("cluster", "create", "-w", "ws", "-n", "gluster", "-f", str(snippet))
    shown = workspace.json("cluster", "show", "-w", "ws", "-n", "gluster")
    written = json.loads(snippet.read_text())["properties"]["nodeSetup"]["mountVolumes"]
    mounts = shown["nodeSetup"]["mountVolumes"]
    assert mounts["unmanagedFileSystems"] == written["unmanagedFileSystems"]


def test_a_job_needing_more_nodes_than_the_cluster_has_is_queued(
    recipes: Bai, tmp_path: Path
) -> None:
    # Batch AI accepted it (202, then queued): it waits until the cluster is resized
    shown = recipes.json(
        "job",
        "create",
        "-w",
        "ws",
        "-e",
        "exp",
        "-c",
        "c1",
        "-n",
        "big",
        "-f",
        write_job(tmp_path, custom_job("true", nodeCount=5)),
    )
    assert shown["executionState"] == "queued" and shown["nodeCount"] == 5


def test_cluster_with_active_jobs_cannot_be_deleted(recipes: Bai, tmp_path: Path) -> None:
    workspace = recipes
    props = custom_job("sleep 30")
    workspace(
        "job",
        "create",
        "-w",
        "ws",
        "-e",
        "exp",
        "-c",
        "c1",
        "-n",
        "busy",
        "-f",
        write_job(tmp_path, props),
    )
    out = workspace("cluster", "delete", "-w", "ws", "-n", "c1", "-y", expect=4)
    assert "terminate or delete them first" in out.stderr
    workspace("experiment", "delete", "-w", "ws", "-n", "exp", "-y")
    workspace("cluster", "delete", "-w", "ws", "-n", "c1", "-y")
    workspace("workspace", "delete", "-n", "ws", "-y")
    assert workspace.json("workspace", "list") == []


def test_a_deleted_cluster_leaves_none_of_its_nodes_files_behind(
    recipes: Bai, tmp_path: Path
) -> None:
    """On Batch AI a cluster's nodes' disks went with it: what its jobs left in their temp
    folders goes with a local cluster (and with its workspace's)."""
    bai = recipes
    bai("cluster", "create", "-w", "ws", "-n", "c2", "--nodes", "1")
    leaves = custom_job("head -c 4096 /dev/zero > $AZ_BATCHAI_JOB_TEMP/scratch.bin")
    for cluster, name in (("c1", "on-c1"), ("c2", "on-c2")):
        bai("job", "create", "-w", "ws", "-e", "exp", "-c", cluster, "-n", name,
            "-f", write_job(tmp_path, leaves, f"{name}.json"))  # fmt: skip
        assert bai.wait(name)["executionState"] == "succeeded"
    nodes = bai.home / "nodes" / "default" / "ws"
    assert list(nodes.glob("c2/0/jobs/ws/exp/on-c2/scratch.bin"))  # what the job left

    bai("cluster", "delete", "-w", "ws", "-n", "c2", "-y")
    assert not (nodes / "c2").exists()
    assert list(nodes.glob("c1/*/jobs/ws/exp/on-c1/scratch.bin"))  # another cluster's: kept
    bai("workspace", "delete", "-n", "ws", "-y")
    assert not (bai.home / "nodes" / "default").exists()


def test_a_cluster_file_with_placeholders_is_filled_from_storage_account_flags(
    workspace: Bai, tmp_path: Path
) -> None:
    # the docs' cluster.json files say <AZURE_BATCHAI_STORAGE_ACCOUNT>, as the recipes' job files
    workspace("storage", "account", "create", "-n", "acct")
    workspace("storage", "share", "create", "--account", "acct", "-n", "dataset1")
    config = tmp_path / "cluster.json"
    share = {
        "accountName": "<AZURE_BATCHAI_STORAGE_ACCOUNT>",
        "azureFileUrl": "https://<AZURE_BATCHAI_STORAGE_ACCOUNT>.file.core.windows.net/dataset1",
        "credentials": {"accountKey": "<AZURE_BATCHAI_STORAGE_KEY>"},
        "relativeMountPath": "afs1",
    }
    config.write_text(
        json.dumps({"properties": {"nodeSetup": {"mountVolumes": {"azureFileShares": [share]}}}})
    )
    unfilled = workspace("cluster", "create", "-w", "ws", "-n", "c", "-f", str(config), expect=2)
    assert "the cluster file still holds the placeholder(s) <AZURE_BATCHAI_STORAGE_ACCOUNT>: pass" \
        " --storage-account-name" in unfilled.stderr  # fmt: skip
    cluster = workspace.json("cluster", "create", "-w", "ws", "-n", "c", "-f", str(config),
                             "--storage-account-name", "acct", "--storage-account-key", "k3y")  # fmt: skip
    mounted = cluster["nodeSetup"]["mountVolumes"]["azureFileShares"][0]
    assert mounted["azureFileUrl"] == "https://acct.file.core.windows.net/dataset1"
    assert "k3y" not in json.dumps(cluster)


def test_a_file_whose_objects_flags_add_to_are_null_or_of_another_kind(
    workspace: Bai, tmp_path: Path
) -> None:
    """The CLI adds its flags' mounts, users and settings to the file's objects: a null one is
    taken as absent (as the schema takes it); an array or a string where an object belongs is
    an error naming it, never a traceback."""
    workspace("storage", "account", "create", "-n", "acct")
    workspace("storage", "share", "create", "--account", "acct", "-n", "data")
    config = tmp_path / "cluster.json"
    afs = ("--storage-account-name", "acct", "--afs-name", "data")

    def create(name: str, properties: object, *flags: str, expect: int = 0) -> str:
        config.write_text(json.dumps({"properties": properties}))
        done = workspace(
            "cluster", "create", "-w", "ws", "-n", name, "-f", str(config), *flags, expect=expect
        )
        return str(done.stderr)

    create("n1", None)
    create("n2", {"nodeSetup": None}, *afs)
    create("n3", {"nodeSetup": {"mountVolumes": None}}, *afs)
    mounted = workspace.json("cluster", "show", "-w", "ws", "-n", "n3")["nodeSetup"]
    assert [m["relativeMountPath"] for m in mounted["mountVolumes"]["azureFileShares"]] == ["afs"]
    for properties, error in [
        ([], "properties must be a JSON object, got an array"),
        ({"nodeSetup": "x"}, "properties.nodeSetup must be a JSON object, got a string"),
        ({"userAccountSettings": [1]}, "properties.userAccountSettings must be a JSON object"),
        ({"openbai": 1}, "properties.openbai must be a JSON object, got a number"),
        (
            {"nodeSetup": {"mountVolumes": {"azureFileShares": {}}}},
            "properties.nodeSetup.mountVolumes.azureFileShares must be a JSON array, got an object",
        ),
    ]:
        shown = create("bad", properties, *afs, expect=2)
        assert "Traceback" not in shown and error in shown
    names = {c["name"] for c in workspace.json("cluster", "list", "-w", "ws")}
    assert {"n1", "n2", "n3"} <= names and "bad" not in names


def test_a_node_whose_setup_task_failed_is_unusable_and_says_why(workspace: Bai) -> None:
    bai = workspace
    bai("cluster", "create", "-w", "ws", "-n", "broken", "--nodes", "1", "--use-auto-storage",
        "--setup-task", "echo setting up; exit 7",
        "--setup-task-output", "$AZ_BATCHAI_MOUNT_ROOT/autoafs")  # fmt: skip

    def unusable() -> dict[str, Any] | None:
        shown = bai.json("cluster", "show", "-w", "ws", "-n", "broken")
        return shown if shown["nodeStateCounts"]["unusableNodeCount"] == 1 else None

    cluster = wait_until(unusable, "the node unusable", timeout=60)
    assert cluster is not None and cluster["errors"] == [
        {
            "code": "SetupTaskFailed",
            "message": "the cluster's setup task failed on node broken-0 with exit code 7",
            "details": [{"name": "nodeId", "value": "broken-0"}],
        }
    ]

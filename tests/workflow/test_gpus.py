"""GPUs of a local cluster: each node slot its own, from the VM size or ``--gpus-per-node``.

This machine has no GPU; ``OPENBAI_GPUS`` names the GPUs openbai hands out instead of what
NVML finds, and what openbai hands out (the node's ``CUDA_VISIBLE_DEVICES``) is what is tested.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Bai
from gpu_files import nvidia_device_files
from polling import wait_until

from .conftest import LOGS_AND_SCRIPTS, custom_job, storage_dir, write_job

PROBE = (
    'echo "{\\"node\\": \\"$AZ_BATCH_NODE_ID\\", \\"gpus\\": \\"$AZ_BATCHAI_NUM_GPUS\\",'
    ' \\"cuda\\": \\"$CUDA_VISIBLE_DEVICES\\", \\"devices\\": \\"$(ls /dev | grep nvidia | xargs)\\"}"'
)


@pytest.fixture
def six_gpus(bai_env: dict[str, str]) -> None:
    """The installation (and its dispatcher) may hand out GPUs 0 to 5; the fixtures' cluster
    c1 (STANDARD_NC6, the default, 2 nodes) takes 0 and 1."""
    bai_env["OPENBAI_GPUS"] = "0,1,2,3,4,5"


def _node_gpus(bai: Bai, cluster: str, count: int) -> list[list[int]]:
    """Each node's GPUs, once the dispatcher has allocated the cluster's ``count`` nodes."""

    def listed() -> list[dict[str, Any]]:
        nodes: list[dict[str, Any]] = bai.json("cluster", "node", "list", "-w", "ws", "-c", cluster)
        return nodes if len(nodes) == count else []

    nodes = wait_until(listed, f"{count} node(s) of cluster {cluster}")
    return [list(n["gpus"]) for n in nodes]


def _lines(bai: Bai, job: dict[str, object]) -> list[dict[str, str]]:
    folder = (
        storage_dir(bai, "acct", "file", "logs")
        / str(job["jobOutputDirectoryPathSegment"])
        / "stdouterr"
    )
    return [
        json.loads(line)
        for path in sorted(folder.glob("stdout*.txt"))
        for line in path.read_text().splitlines()
        if line.startswith("{")
    ]


def _on_both_slots(bai: Bai, tmp_path: Path, cluster: str) -> dict[str, dict[str, str]]:
    """What PROBE printed in two one-node jobs run at once on the two-node ``cluster``, one on
    each slot, by node."""
    for name in ("a", "b"):
        path = write_job(tmp_path, custom_job(f"{PROBE}; sleep 2"), f"{name}.json")
        bai("job", "create", "-w", "ws", "-e", "exp", "-c", cluster, "-n", name, "-f", path)
    seen = {}
    for name in ("a", "b"):
        finished = bai.wait(name)
        assert finished["executionState"] == "succeeded", bai.why(finished)
        (line,) = _lines(bai, finished)
        seen[line["node"]] = line
    return seen


def test_each_node_of_a_vm_size_gets_its_own_gpus(
    six_gpus: None, recipes: Bai, tmp_path: Path
) -> None:
    bai = recipes
    created = bai.json(
        "cluster", "create", "-w", "ws", "-n", "nc12", "-s", "STANDARD_NC12", "--nodes", "2"
    )
    assert created["openbai"]["gpusPerNode"] == 2 and created["gpuCount"] == 4
    assert _node_gpus(bai, "nc12", 2) == [[2, 3], [4, 5]]
    seen = _on_both_slots(bai, tmp_path, "nc12")
    # each sees its two GPUs alone (tests below: their device files), as CUDA numbers them
    assert {n: (v["gpus"], v["cuda"]) for n, v in seen.items()} == {
        "nc12-0": ("2", "0,1"),
        "nc12-1": ("2", "0,1"),
    }


def test_without_a_sandbox_a_job_sees_the_machines_gpus_by_their_indices(
    six_gpus: None, recipes: Bai, tmp_path: Path
) -> None:
    """Every GPU's device file is in sight then: CUDA_VISIBLE_DEVICES picks the node's."""
    bai = recipes
    bai("cluster", "create", "-w", "ws", "-n", "open", "-s", "STANDARD_NC12", "--nodes", "1",
        "--no-sandbox")  # fmt: skip
    path = write_job(tmp_path, custom_job(PROBE), "open.json")
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", "open", "-n", "open", "-f", path)
    finished = bai.wait("open")
    assert finished["executionState"] == "succeeded", bai.why(finished)
    assert [(v["gpus"], v["cuda"]) for v in _lines(bai, finished)] == [("2", "2,3")]


def test_the_clusters_setup_task_sees_its_nodes_gpus_as_its_jobs_do(
    six_gpus: None, recipes: Bai, tmp_path: Path
) -> None:
    """The setup task runs in the node's sandbox too, which shows it the node's GPUs alone."""
    bai = recipes
    cluster = {
        "properties": {
            "vmSize": "STANDARD_NC12",
            "scaleSettings": {"manual": {"targetNodeCount": 1}},
            "nodeSetup": {
                "setupTask": {
                    "commandLine": 'echo "cuda $CUDA_VISIBLE_DEVICES"',
                    "stdOutErrPathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/logs",
                },
                "mountVolumes": LOGS_AND_SCRIPTS,
            },
        }
    }
    (tmp_path / "cluster.json").write_text(json.dumps(cluster))
    bai("cluster", "create", "-w", "ws", "-n", "setup", "-f", str(tmp_path / "cluster.json"))
    assert _node_gpus(bai, "setup", 1) == [[2, 3]]
    path = write_job(tmp_path, custom_job(PROBE), "after.json")
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", "setup", "-n", "after", "-f", path)
    finished = bai.wait("after")
    assert finished["executionState"] == "succeeded", bai.why(finished)
    assert [v["cuda"] for v in _lines(bai, finished)] == ["0,1"]
    (printed,) = storage_dir(bai, "acct", "file", "logs").rglob("stdout-setup-0.txt")
    assert printed.read_text() == "cuda 0,1\n"


@pytest.fixture
def gpu_files(six_gpus: None) -> Iterator[None]:
    with nvidia_device_files(6):
        yield


def test_a_sandboxed_job_finds_the_device_files_of_its_nodes_gpus_only(
    gpu_files: None, recipes: Bai, tmp_path: Path
) -> None:
    """Without ``CUDA_VISIBLE_DEVICES`` a job would still find no other slot's GPU: its
    sandbox binds only its own GPUs' device files (and the driver's shared ones)."""
    bai = recipes
    bai("cluster", "create", "-w", "ws", "-n", "nc12", "-s", "STANDARD_NC12", "--nodes", "2")
    seen = {n: (v["devices"], v["cuda"]) for n, v in _on_both_slots(bai, tmp_path, "nc12").items()}
    assert seen == {
        "nc12-0": ("nvidia2 nvidia3 nvidiactl", "0,1"),
        "nc12-1": ("nvidia4 nvidia5 nvidiactl", "0,1"),
    }


def test_a_cluster_asking_for_more_gpus_than_the_machine_has_is_refused(
    six_gpus: None, recipes: Bai
) -> None:
    bai = recipes
    refused = bai(
        "cluster", "create", "-w", "ws", "-n", "big", "-s", "STANDARD_NC24", "--nodes", "2",
        expect=2,
    )  # fmt: skip
    assert "properties.openbai.gpusPerNode" in refused.stderr
    assert (
        "8 in all, but this machine has 6 GPU(s) (OPENBAI_GPUS), 2 of them held" in refused.stderr
    )
    bai("cluster", "create", "-w", "ws", "-n", "three", "--gpus-per-node", "3")
    # GPUs held by a cluster are not handed out again
    taken = bai("cluster", "create", "-w", "ws", "-n", "two", "--gpus-per-node", "2", expect=2)
    assert "5 of them held by other clusters" in taken.stderr
    bai("cluster", "create", "-w", "ws", "-n", "one", "--gpus-per-node", "1")
    assert _node_gpus(bai, "one", 1) == [[5]]
    assert bai.json("cluster", "show", "-w", "ws", "-n", "one")["gpuCount"] == 1


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="OpenMPI (mpirun) is not installed")
def test_the_ranks_of_a_local_two_node_mpi_job_have_both_nodes_gpus_and_limits(
    gpu_files: None, recipes: Bai, tmp_path: Path
) -> None:
    """On a local cluster every node is this machine: the first node's mpirun starts every
    rank itself, in its sandbox, which then has the GPUs and limits of both nodes (with its
    own alone, 4 ranks shared the first node's 2 GPUs and its slot's limits)."""
    bai = recipes
    bai("cluster", "create", "-w", "ws", "-n", "nc12", "-s", "STANDARD_NC12", "--nodes", "2",
        "--cpus-per-node", "0.5", "--memory-per-node", "300M", "--processes-per-node", "100")  # fmt: skip
    probe = PROBE.replace("$AZ_BATCH_NODE_ID", "$OMPI_COMM_WORLD_RANK")  # the rank, as "node"
    job = {
        "nodeCount": 2,
        "customMpiSettings": {"commandLine": probe, "processCount": 4},
        "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
        "mountVolumes": LOGS_AND_SCRIPTS,
    }
    path = write_job(tmp_path, job, "mpi.json")
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", "nc12", "-n", "mpi", "-f", path)
    finished = bai.wait("mpi")
    assert finished["executionState"] == "succeeded", bai.why(finished)
    seen = sorted((v["node"], v["gpus"], v["cuda"], v["devices"]) for v in _lines(bai, finished))
    # each rank picks its GPU by its local rank (0-3): all four are visible; the variable
    # keeps the node's own count, as the cluster's VM size says
    both = "nvidia2 nvidia3 nvidia4 nvidia5 nvidiactl"
    assert seen == [(str(r), "2", "0,1,2,3", both) for r in range(4)]
    folder = (
        storage_dir(bai, "acct", "file", "logs")
        / str(finished["jobOutputDirectoryPathSegment"])
        / "stdouterr"
    )
    first = (folder / "execution-nc12-0.log").read_text()
    assert "limits 1 CPUs, 600 MiB memory, 200 processes" in first
    assert "mpirun starts the ranks of node(s) nc12-1 here" in first
    second = (folder / "execution-nc12-1.log").read_text()
    assert "limits 0.5 CPUs, 300 MiB memory, 100 processes" in second


@pytest.fixture
def no_gpus(bai_env: dict[str, str]) -> None:
    bai_env["OPENBAI_GPUS"] = ""


def test_without_gpus_a_gpu_vm_size_runs_without_and_hides_the_machines(
    no_gpus: None, recipes: Bai, tmp_path: Path
) -> None:
    bai = recipes
    created = bai("cluster", "create", "-w", "ws", "-n", "nc6", "-s", "STANDARD_NC6")
    assert "STANDARD_NC6 has 1 GPU(s) per node, but there is no GPU to give" in created.stderr
    asked = bai("cluster", "create", "-w", "ws", "-n", "g", "--gpus-per-node", "1", expect=2)
    assert "this machine has 0 GPU(s)" in asked.stderr
    path = write_job(tmp_path, custom_job(PROBE))
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", "nc6", "-n", "cpu", "-f", path)
    finished = bai.wait("cpu")
    assert finished["executionState"] == "succeeded", finished["executionInfo"]
    assert [(v["gpus"], v["cuda"]) for v in _lines(bai, finished)] == [("0", "")]


def test_openbai_gpus_must_name_gpu_indices(bai: Bai) -> None:
    bai.env["OPENBAI_GPUS"] = "0,x"
    result = bai("workspace", "list", expect=2)
    assert "OPENBAI_GPUS: '0,x' is not a list of GPU indices" in result.stderr

"""The setup task of a Slurm cluster runs when the cluster gets its hosts, as Batch AI ran it
when a node was allocated: a one-node Slurm job pinned to each host (``sbatch --nodelist``),
so that ``stdout-<node>.txt`` is in place once the cluster is ``steady``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import Bai
from polling import wait_for_nodes, wait_until
from workflow.conftest import custom_job, storage_dir

from executors.test_slurm_jobs import NODES, run

if TYPE_CHECKING:
    from slurm_fixture import SlurmCluster

pytestmark = pytest.mark.slurm


def _create(bai: Bai, name: str, command: str) -> None:
    bai(
        "cluster", "create", "-w", "ws", "-n", name, "--executor", "slurm",
        "--partition", "debug", "--storage-account-name", "acct", "--afs-name", "logs",
        "--setup-task", command, "--setup-task-output", "$AZ_BATCHAI_MOUNT_ROOT/afs/setup",
    )  # fmt: skip


def _setup_outputs(bai: Bai, cluster: str) -> Path:
    shown = bai.json("cluster", "show", "-w", "ws", "-n", cluster)
    suffix = shown["nodeSetup"]["setupTask"]["stdOutErrPathSuffix"]
    return storage_dir(bai, "acct", "file", "logs") / "setup" / str(suffix)


def test_setup_task_ran_on_every_host_once_the_cluster_is_steady(
    on_slurm: Bai, slurm_env: SlurmCluster, tmp_path: Path
) -> None:
    bai = on_slurm
    _create(bai, "prep", "echo set up on $AZ_BATCH_NODE_ID $(hostname)")
    shown = wait_for_nodes(bai, "prep")
    # no job ran: the setup runs did, one per host, when the cluster got its hosts
    out = _setup_outputs(bai, "prep")
    assert sorted(p.name for p in out.glob("stdout-*.txt")) == [f"stdout-{n}.txt" for n in NODES]
    for node in NODES:
        assert (out / f"stdout-{node}.txt").read_text() == f"set up on {node} {node}\n"
    assert shown["currentNodeCount"] == 2
    counts = shown["nodeStateCounts"]
    assert counts["preparingNodeCount"] == counts["unusableNodeCount"] == 0
    listed = bai.json("cluster", "file", "list", "-w", "ws", "-c", "prep")
    assert sorted(f["name"] for f in listed) == sorted(
        f"{kind}-{n}.txt" for kind in ("stderr", "stdout") for n in NODES
    )
    # a job on both hosts finds them set up: the task does not run again
    job = run(bai, tmp_path, custom_job("true", nodeCount=2), cluster="prep")
    assert job["executionState"] == "succeeded", job
    for node in NODES:
        assert (out / f"stdout-{node}.txt").read_text() == f"set up on {node} {node}\n"


def test_hosts_whose_setup_task_failed_are_unusable_and_get_no_job(
    on_slurm: Bai, slurm_env: SlurmCluster, tmp_path: Path
) -> None:
    bai = on_slurm
    # fails on node2 only
    _create(bai, "half", 'echo on $(hostname); test "$(hostname)" = node1')
    shown = wait_for_nodes(bai, "half")
    counts = shown["nodeStateCounts"]
    assert (counts["unusableNodeCount"], counts["preparingNodeCount"]) == (1, 0), counts
    (error,) = shown["errors"]  # the node's, as Batch AI's errors of node setup
    assert error["code"] == "SetupTaskFailed" and "node2" in error["message"]
    assert error["details"] == [{"name": "nodeId", "value": "node2"}]
    out = _setup_outputs(bai, "half")
    assert (out / "stdout-node2.txt").read_text() == "on node2\n"
    # jobs run on the host that is set up, never on the unusable one
    for name in ("a", "b"):
        job = run(bai, tmp_path, custom_job("hostname"), name=name, cluster="half")
        assert job["executionState"] == "succeeded", job
        stdout = storage_dir(bai, "acct", "file", "logs") / job["jobOutputDirectoryPathSegment"]
        assert (stdout / "stdouterr" / "stdout.txt").read_text() == "node1\n"
    assert (out / "stdout-node2.txt").read_text() == "on node2\n"


def _queued_setup_runs(slurm_env: SlurmCluster, bai: Bai) -> dict[str, str]:
    """This installation's setup runs in Slurm's queue: job id -> state."""
    listed = slurm_env.run(["squeue", "--noheader", "--format=%i|%j|%T|%k"], check=False).stdout
    found = {}
    for line in listed.splitlines():
        job_id, name, state, comment = line.split("|", 3)
        if "/.setup/" in name and comment.startswith(f"openbai {bai.home}/"):
            found[job_id] = state
    return found


def test_setup_runs_still_queued_are_cancelled_when_their_cluster_is_deleted(
    on_slurm: Bai, slurm_env: SlurmCluster
) -> None:
    bai = on_slurm
    # both hosts taken whole: the setup runs wait in Slurm's queue
    with slurm_env.nodes_taken(300):
        _create(bai, "doomed", "echo set up")

        def both_queued() -> dict[str, str]:
            runs = _queued_setup_runs(slurm_env, bai)
            return runs if len(runs) == 2 else {}

        queued = wait_until(both_queued, "two setup runs in Slurm's queue", timeout=60)
        assert set(queued.values()) == {"PENDING"}, queued
        bai("cluster", "delete", "-w", "ws", "-n", "doomed", "-y")
        assert _queued_setup_runs(slurm_env, bai) == {}
        for job_id in queued:
            assert slurm_env.job_state(job_id) in (None, "CANCELLED"), job_id

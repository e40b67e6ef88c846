"""Batch AI's allocation: jobs larger than a cluster's current size wait queued, auto-scale
clusters grow for them and shrink after an idle time, resizes show ``resizing``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Bai
from polling import wait_until

from .conftest import custom_job, write_job


@pytest.fixture
def bai_env(bai_env: dict[str, str]) -> dict[str, str]:
    # Batch AI waited minutes before shrinking; the tests need not
    return {**bai_env, "OPENBAI_AUTOSCALE_IDLE_SECONDS": "1"}


def _cluster(bai: Bai, name: str) -> dict[str, Any]:
    return dict(bai.json("cluster", "show", "-w", "ws", "-n", name))


def _create_job(bai: Bai, tmp_path: Path, cluster: str, name: str, props: dict[str, Any]) -> None:
    job_file = write_job(tmp_path, props, f"{name}.json")
    created = bai.json(
        "job", "create", "-w", "ws", "-e", "exp", "-c", cluster, "-n", name, "-f", job_file
    )
    assert created["executionState"] == "queued"


def _after_dispatcher_rounds(bai: Bai, tmp_path: Path) -> None:
    """Return once the dispatcher has run whole rounds begun after this call: a probe job on
    a cluster of its own was started and its end recorded (instead of sleeping "a few
    rounds" before asserting that something did not change)."""
    if bai("cluster", "show", "-w", "ws", "-n", "probe", expect=None).exit_code != 0:
        bai("cluster", "create", "-w", "ws", "-n", "probe", "--nodes", "1")
    name = f"probe{time.monotonic_ns()}"
    _create_job(bai, tmp_path, "probe", name, custom_job("true"))
    assert bai.wait(name)["executionState"] == "succeeded"


def test_auto_scale_cluster_grows_for_waiting_jobs_and_shrinks_when_idle(
    recipes: Bai, tmp_path: Path, gates: Path
) -> None:
    bai = recipes
    created = bai.json("cluster", "create", "-w", "ws", "-n", "auto", "--min", "0", "--max", "2")
    assert created["currentNodeCount"] == 0
    assert created["allocationState"] == "steady"
    gate = gates / "go"
    # a 2-node job on a cluster that has no node now: accepted and queued, as on Batch AI
    _create_job(
        bai,
        tmp_path,
        "auto",
        "wide",
        custom_job(
            f"while [ ! -e {gate} ]; do sleep 0.05; done; echo $AZ_BATCH_HOST_LIST",
            nodeCount=2,
        ),
    )
    running = wait_until(
        lambda: (
            _cluster(bai, "auto")["nodeStateCounts"]["runningNodeCount"] == 2
            and _cluster(bai, "auto")
        ),
        "the auto-scale cluster grown to 2 running nodes",
    )
    assert running["currentNodeCount"] == 2
    shown = bai.json("job", "show", "-w", "ws", "-e", "exp", "-n", "wide")
    assert shown["executionState"] == "running"
    gate.touch()
    assert bai.wait("wide")["executionState"] == "succeeded"
    # idle for longer than OPENBAI_AUTOSCALE_IDLE_SECONDS: back to its minimum
    shrunk = wait_until(
        lambda: (
            (c := _cluster(bai, "auto"))["currentNodeCount"] == 0
            and c["allocationState"] == "steady"
            and c
        ),
        "the auto-scale cluster shrunk to 0 nodes",
    )
    assert shrunk["nodeStateCounts"]["idleNodeCount"] == 0


def test_auto_scale_grows_only_to_its_maximum(recipes: Bai, tmp_path: Path, gates: Path) -> None:
    bai = recipes
    bai("cluster", "create", "-w", "ws", "-n", "auto", "--min", "1", "--max", "2")
    gate = gates / "go"
    for name in ("a", "b", "c"):
        _create_job(
            bai, tmp_path, "auto", name, custom_job(f"while [ ! -e {gate} ]; do sleep 0.05; done")
        )
    wait_until(
        lambda: _cluster(bai, "auto")["nodeStateCounts"]["runningNodeCount"] == 2,
        "two jobs running on the grown cluster",
    )
    _after_dispatcher_rounds(bai, tmp_path)
    cluster = _cluster(bai, "auto")
    assert cluster["currentNodeCount"] == 2
    states = sorted(
        bai.json("job", "show", "-w", "ws", "-e", "exp", "-n", n)["executionState"]
        for n in ("a", "b", "c")
    )
    assert states == ["queued", "running", "running"]
    gate.touch()
    for name in ("a", "b", "c"):
        assert bai.wait(name)["executionState"] == "succeeded"
    wait_until(
        lambda: _cluster(bai, "auto")["currentNodeCount"] == 1,
        "the auto-scale cluster back at its minimum of 1",
    )


def test_job_larger_than_a_manual_cluster_waits_for_a_resize(recipes: Bai, tmp_path: Path) -> None:
    bai = recipes
    bai("cluster", "create", "-w", "ws", "-n", "small", "--nodes", "1")
    wait_until(
        lambda: (
            (c := _cluster(bai, "small"))["allocationState"] == "steady"
            and c["nodeStateCounts"]["idleNodeCount"] == 1
        ),
        "the 1-node cluster allocated",
    )
    _create_job(bai, tmp_path, "small", "wide", custom_job("echo wide", nodeCount=2))
    _after_dispatcher_rounds(bai, tmp_path)
    assert bai.json("job", "show", "-w", "ws", "-e", "exp", "-n", "wide")["executionState"] == (
        "queued"
    )
    resized = bai.json("cluster", "resize", "-w", "ws", "-n", "small", "-t", "2")
    assert resized["allocationState"] == "resizing"
    assert bai.wait("wide")["executionState"] == "succeeded"
    steady = wait_until(
        lambda: (c := _cluster(bai, "small"))["allocationState"] == "steady" and c,
        "the resized cluster steady",
    )
    assert steady["currentNodeCount"] == 2
    assert steady["nodeStateCounts"]["idleNodeCount"] == 2


def _shrunk_under_two_jobs(bai: Bai, tmp_path: Path, gates: Path, option: str) -> str:
    """A 2-node cluster with ``option`` running a job on each node, resized to 1 node: the
    name of the job whose node goes (the one on the second node)."""
    gate = gates / option
    config = tmp_path / "cluster.json"
    manual = {"targetNodeCount": 2, "nodeDeallocationOption": option}
    config.write_text(json.dumps({"properties": {"scaleSettings": {"manual": manual}}}))
    bai("cluster", "create", "-w", "ws", "-n", option, "-f", str(config))
    command = f"echo run; while [ ! -e {gate} ]; do sleep 0.05; done; echo done"
    for name in ("first", "second"):
        job = write_job(tmp_path, custom_job(command), f"{name}.json")
        bai("job", "create", "-w", "ws", "-e", "exp", "-c", option, "-n", f"{option}-{name}",
            "-f", job)  # fmt: skip
    jobs = [f"{option}-first", f"{option}-second"]

    def nodes_of() -> dict[str, list[str]] | None:
        shown = {j: bai.json("job", "node", "list", "-w", "ws", "-e", "exp", "-j", j) for j in jobs}
        found = {j: [n["nodeId"] for n in nodes] for j, nodes in shown.items()}
        return found if all(found.values()) else None

    held = wait_until(nodes_of, "both jobs running", timeout=60)
    assert held is not None
    bai("cluster", "resize", "-w", "ws", "-n", option, "-t", "1")
    (taken,) = [j for j, nodes in held.items() if nodes == [f"{option}-1"]]
    return taken


def test_a_resize_under_a_running_job_requeues_it_by_default(
    recipes: Bai, tmp_path: Path, gates: Path
) -> None:
    """Batch AI's default ``nodeDeallocationOption``: the job on a node taken away is stopped
    and queued again; it runs again once a node is free, and the cluster shrinks meanwhile."""
    bai = recipes
    taken = _shrunk_under_two_jobs(bai, tmp_path, gates, "requeue")

    def state(job: str) -> str:
        return str(bai.json("job", "show", "-w", "ws", "-e", "exp", "-n", job)["executionState"])

    wait_until(lambda: state(taken) == "queued", "the job queued again", 60)
    wait_until(
        lambda: bai.json("cluster", "show", "-w", "ws", "-n", "requeue")["currentNodeCount"] == 1,
        "the cluster shrunk to 1 node",
        timeout=60,
    )
    (gates / "requeue").touch()
    for job in ("requeue-first", "requeue-second"):
        assert bai.wait(job)["executionState"] == "succeeded"
    assert bai("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", taken,
               "-f", "stdout.txt").stdout == "run\nrun\ndone\n"  # both runs  # fmt: skip


def test_a_resize_under_a_running_job_of_a_terminate_cluster_ends_it(
    recipes: Bai, tmp_path: Path, gates: Path
) -> None:
    bai = recipes
    taken = _shrunk_under_two_jobs(bai, tmp_path, gates, "terminate")
    shown = bai.json("cluster", "show", "-w", "ws", "-n", "terminate")["scaleSettings"]
    assert shown["manual"] == {"targetNodeCount": 1, "nodeDeallocationOption": "terminate"}
    ended = bai.wait(taken)
    assert ended["executionState"] == "failed"
    (error,) = ended["executionInfo"]["errors"]
    assert error["code"] == "JobTerminated" and "taken away by a resize" in error["message"]
    (gates / "terminate").touch()
    (other,) = {"terminate-first", "terminate-second"} - {taken}
    assert bai.wait(other)["executionState"] == "succeeded"

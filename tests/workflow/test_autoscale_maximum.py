"""An auto-scale maximum lowered under running jobs, with real jobs: the cluster shows
``resizing`` while it has more nodes than its new maximum, and gives each node above it back
as soon as the node's job ends, without waiting out the idle time that shrinks it to its
minimum."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import Bai
from polling import after_dispatcher_rounds, wait_until

from .conftest import custom_job, write_job


@pytest.fixture
def bai_env(bai_env: dict[str, str]) -> dict[str, str]:
    # long enough that only the lowered maximum can shrink the cluster during the test
    return {**bai_env, "OPENBAI_AUTOSCALE_IDLE_SECONDS": "600"}


def _cluster(bai: Bai) -> dict[str, Any]:
    return dict(bai.json("cluster", "show", "-w", "ws", "-n", "c3"))


def _allocation(bai: Bai) -> tuple[int, str]:
    shown = _cluster(bai)
    return shown["currentNodeCount"], shown["allocationState"]


def test_a_lowered_auto_scale_maximum_gives_back_the_nodes_above_it_when_their_jobs_end(
    recipes: Bai, tmp_path: Path, gates: Path
) -> None:
    bai = recipes
    bai("cluster", "create", "-w", "ws", "-n", "c3", "--min", "0", "--max", "2")
    for name in ("one", "two"):
        gate = gates / name
        job = write_job(tmp_path, custom_job(f"while [ ! -e {gate} ]; do sleep 0.05; done"))
        bai("job", "create", "-w", "ws", "-e", "exp", "-c", "c3", "-n", name, "-f", job)

    def nodes() -> dict[str, str] | None:
        shown = {j: bai.json("job", "node", "list", "-w", "ws", "-e", "exp", "-j", j)
                 for j in ("one", "two")}  # fmt: skip
        return {n[0]["nodeId"]: j for j, n in shown.items() if n} if all(shown.values()) else None

    held = wait_until(nodes, "both jobs running on the grown cluster", timeout=60)
    assert held is not None and sorted(held) == ["c3-0", "c3-1"]
    wait_until(lambda: _allocation(bai) == (2, "steady"), "2 nodes, steady", timeout=30)

    lowered = bai.json("cluster", "auto-scale", "-w", "ws", "-n", "c3", "--min", "0", "--max", "1")
    # above its maximum while both nodes run jobs: not steady, from the answer on
    assert (lowered["currentNodeCount"], lowered["allocationState"]) == (2, "resizing")
    after_dispatcher_rounds(bai)
    assert _allocation(bai) == (2, "resizing")

    (gates / held["c3-1"]).touch()
    assert bai.wait(held["c3-1"])["executionState"] == "succeeded"
    wait_until(lambda: _allocation(bai) == (1, "steady"), "1 node, steady", timeout=30)

    (gates / held["c3-0"]).touch()
    assert bai.wait(held["c3-0"])["executionState"] == "succeeded"
    after_dispatcher_rounds(bai)
    # at its maximum, and idle for less than OPENBAI_AUTOSCALE_IDLE_SECONDS: kept
    assert _allocation(bai) == (1, "steady")

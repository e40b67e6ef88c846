"""``bai cluster create --container-runtime``: every runtime the cluster.json takes
(``properties.openbai.containerRuntime``: podman, docker, apptainer) is a choice of the flag."""

from __future__ import annotations

import shutil

import pytest
from conftest import Bai


@pytest.mark.parametrize("runtime", ["podman", "docker", "apptainer"])
def test_the_flag_takes_what_the_cluster_json_takes(bai: Bai, runtime: str) -> None:
    bai("workspace", "create", "-n", "ws")
    args = ["cluster", "create", "-w", "ws", "-n", "c", "--nodes", "1",
            "--container-runtime", runtime]  # fmt: skip
    if shutil.which(runtime) is None:
        # past the flag's own check, to the one a cluster.json gets: not installed here
        refused = bai(*args, expect=2)
        assert f"container runtime {runtime} is not installed" in refused.stderr
        assert "properties.openbai.containerRuntime" in refused.stderr
        return
    created = bai.json(*args)
    assert created["openbai"]["containerRuntime"] == runtime


def test_a_runtime_it_does_not_know_is_refused_by_the_flag(bai: Bai) -> None:
    bai("workspace", "create", "-n", "ws")
    refused = bai("cluster", "create", "-w", "ws", "-n", "c", "--nodes", "1",
                  "--container-runtime", "lxc", expect=2)  # fmt: skip
    assert "--container-runtime" in refused.stderr and "apptainer" in refused.stderr

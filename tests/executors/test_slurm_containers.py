"""Jobs with ``containerSettings`` on the two-node Slurm cluster: each node runs the job in its
own container of the image (podman, in the node's network namespace)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Bai
from job_files import ALLREDUCE, write_job, write_mpi_job
from podman_fixture import Podman, podman_fixture  # noqa: F401  (the fixture "podman")
from runtime.hostile import SEALED, outside_tmp

from .test_slurm_gpus import gpu_nodes, gpu_zero_held  # noqa: F401  (fixtures)

pytestmark = SEALED


@pytest.fixture
def bai_env(bai_env: dict[str, str]) -> Iterator[dict[str, str]]:
    yield from outside_tmp(bai_env)


def output(bai: Bai, job: str, name: str = "stdout.txt") -> str:
    return str(bai("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", job, "-f", name).stdout)


def test_an_mpi_job_in_a_container_runs_its_ranks_in_the_container_of_each_node(
    with_cpu_cluster: Bai, podman: Podman, tmp_path: Path
) -> None:
    """As Batch AI's two-node Horovod and ChainerMN recipes run: mpirun in the image, on the
    first node, starts the ranks of the second node in that node's container."""
    # no GPUs: the test nodes' are device files without a driver, which no container can get
    bai = with_cpu_cluster
    rank = (
        "echo rank $OMPI_COMM_WORLD_RANK on $(hostname) image $(cat /etc/openbai-test-image)"
        f" prepared on $(cat /tmp/prepared-on); {ALLREDUCE}"
    )
    job = write_mpi_job(
        tmp_path / "mpi.json",
        rank,
        # each node's own container remembers which node prepared it
        jobPreparation={"commandLine": "hostname > /tmp/prepared-on"},
        containerSettings={"imageSourceRegistry": {"image": podman.image}},
    )
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", "cpu", "-n", "mpi", "-f", job)
    shown = bai.wait("mpi", timeout=180)
    assert shown["executionState"] == "succeeded", bai.why(shown)
    ranks = sorted(line for line in output(bai, "mpi").splitlines() if line.startswith("rank"))
    assert ranks == [
        f"rank 0 on node1 image {podman.image} prepared on node1",
        f"rank 1 on node2 image {podman.image} prepared on node2",
    ]
    # and the ranks, each in its own node's container, talk to each other across the hosts
    allreduced = sorted(line for line in output(bai, "mpi").splitlines() if "allreduce" in line)
    assert allreduced == ["allreduce 0 3", "allreduce 1 3"]
    second = output(bai, "mpi", "execution-node2.log")
    assert "starting MPI daemon" in second and "in container" in second


@pytest.mark.usefixtures("gpu_zero_held")
def test_a_container_gets_the_gpus_slurm_assigned(
    on_slurm: Bai, podman: Podman, tmp_path: Path
) -> None:
    """The container is started with the GPU Slurm gave the job (1: another job holds 0),
    as a CDI device. The test nodes' GPUs are device files without a driver, for which this
    machine has no CDI description (``nvidia-ctk cdi generate`` writes it where there is one):
    the runtime refuses it, and the job fails saying which GPU was asked for."""
    bai = on_slurm
    job = write_job(
        tmp_path / "gpu.json",
        "nvidia-smi -L",
        containerSettings={"imageSourceRegistry": {"image": podman.image}},
    )
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", "gpu", "-n", "gpu", "-f", job)
    shown = bai.wait("gpu", timeout=120)
    assert shown["executionState"] == "failed", bai.why(shown)
    (error,) = shown["executionInfo"]["errors"]
    assert error["code"] == "FailedStartingContainer"
    info = {d["name"]: d["value"] for d in error["details"]}["Info"]
    assert "nvidia.com/gpu=1" in info and "nvidia.com/gpu=0" not in info, info

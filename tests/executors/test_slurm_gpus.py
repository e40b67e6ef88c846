"""GPUs of a Slurm cluster: Slurm's GRES counts them, a job asks ``--gres=gpu:N`` per node and
gets the GPUs Slurm assigned. The test cluster (scripts/services/slurm.sh) declares two GPUs per
node over device files it makes, so Slurm's own GRES path runs here without hardware."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conftest import Bai
from gpu_files import nvidia_device_files
from workflow.conftest import custom_job, storage_dir, write_job

if TYPE_CHECKING:
    from slurm_fixture import SlurmCluster

pytestmark = pytest.mark.slurm

OUT = [{"id": "OUT", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs"}]
PROBE = "env > $AZ_BATCHAI_OUTPUT_OUT/env.txt"


def _gres(cluster: SlurmCluster) -> dict[str, str]:
    out = cluster.run(["sinfo", "--noheader", "--Node", "-p", cluster.partition, "-o", "%N %G"])
    return dict(line.split() for line in out.stdout.splitlines() if line.strip())


@pytest.fixture
def gpu_nodes(slurm_env: SlurmCluster) -> SlurmCluster:
    gres = _gres(slurm_env)
    if set(gres.values()) != {"gpu:2"}:
        pytest.skip(
            f"the Slurm cluster declares no GPUs ({gres}): it was started by an older "
            "scripts/services/slurm.sh; restart it"
        )
    return slurm_env


@pytest.fixture
def gpu_zero_held(gpu_nodes: SlurmCluster, tmp_path: Path) -> Iterator[None]:
    """A job outside openbai holds GPU 0 of both nodes, so Slurm can give openbai only GPU 1."""
    proc = gpu_nodes.run(
        ["sbatch", "--parsable", "-p", gpu_nodes.partition, "-N2", "--ntasks-per-node=1"]
        + ["--gres=gpu:1", f"--output={tmp_path / 'holder.out'}", "--wrap", "sleep 600"]
    )
    job_id = proc.stdout.strip().split(";")[0]
    try:
        gpu_nodes.wait_job(job_id, states={"RUNNING"})
        assert "gpu:1(IDX:0)" in gpu_nodes.run(["scontrol", "-d", "show", "job", job_id]).stdout
        yield
    finally:
        gpu_nodes.run(["scancel", job_id], check=False)


def _job_env(bai: Bai, tmp_path: Path, cluster: str, name: str) -> dict[str, str]:
    path = write_job(tmp_path, custom_job(PROBE, outputDirectories=OUT), f"{name}.json")
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", cluster, "-n", name, "-f", path)
    job: dict[str, Any] = bai.wait(name, timeout=60)
    assert job["executionState"] == "succeeded", job
    env_txt = (
        storage_dir(bai, "acct", "file", "logs")
        / str(job["jobOutputDirectoryPathSegment"])
        / "outputs"
        / "env.txt"
    )
    return dict(line.split("=", 1) for line in env_txt.read_text().splitlines() if "=" in line)


def test_cluster_show_counts_the_gpus_of_slurms_gres(
    on_slurm: Bai, gpu_nodes: SlurmCluster
) -> None:
    bai = on_slurm
    shown = bai.json("cluster", "show", "-w", "ws", "-n", "gpu")
    # STANDARD_NC6 (the default size): one GPU per node; the partition's hosts have 2 + 2
    assert shown["openbai"]["gpusPerNode"] == 1
    assert shown["gpuCount"] == 4


def test_a_job_gets_the_gpus_slurm_assigned(
    on_slurm: Bai, gpu_zero_held: None, tmp_path: Path
) -> None:
    env = _job_env(on_slurm, tmp_path, "gpu", "j1")
    # GPU 0 is taken on both nodes: GPU 1 is the only one Slurm could give
    assert env["SLURM_JOB_GPUS"] == "1"
    # its one device file is in sight, numbered 0 as CUDA counts the GPUs it can open
    assert env["CUDA_VISIBLE_DEVICES"] == "0"
    assert env["AZ_BATCHAI_NUM_GPUS"] == "1"


@pytest.fixture
def gpu_files(gpu_nodes: SlurmCluster) -> Iterator[None]:
    """The GPUs' device files where a real node has them, /dev (the test nodes share the host's
    mounts): the GPUs Slurm hands out are those of the cluster's gres.conf, elsewhere."""
    with nvidia_device_files(2):
        yield


def test_a_sandboxed_job_finds_the_device_files_of_the_gpus_slurm_assigned_only(
    with_cpu_cluster: Bai, gpu_zero_held: None, gpu_files: None, tmp_path: Path
) -> None:
    bai = with_cpu_cluster
    listing = "ls /dev | grep nvidia | xargs > $AZ_BATCHAI_OUTPUT_OUT/devices.txt"
    found = {}
    for cluster in ("gpu", "cpu"):
        path = write_job(tmp_path, custom_job(listing, outputDirectories=OUT), f"{cluster}.json")
        bai("job", "create", "-w", "ws", "-e", "exp", "-c", cluster, "-n", cluster, "-f", path)
        job: dict[str, Any] = bai.wait(cluster, timeout=60)
        assert job["executionState"] == "succeeded", bai.why(job)
        outputs = storage_dir(bai, "acct", "file", "logs") / job["jobOutputDirectoryPathSegment"]
        found[cluster] = (outputs / "outputs" / "devices.txt").read_text().strip()
    # GPU 1, the only one Slurm could give; a job given none gets only the driver's own file
    assert found == {"gpu": "nvidia1 nvidiactl", "cpu": "nvidiactl"}


def test_two_gpus_per_node(on_slurm: Bai, gpu_nodes: SlurmCluster, tmp_path: Path) -> None:
    bai = on_slurm
    created = bai.json(
        "cluster", "create", "-w", "ws", "-n", "nc12", "-s", "STANDARD_NC12",
        "--executor", "slurm", "--partition", "debug",
    )  # fmt: skip
    assert created["openbai"]["gpusPerNode"] == 2
    env = _job_env(bai, tmp_path, "nc12", "j2")
    assert sorted(env["CUDA_VISIBLE_DEVICES"].split(",")) == ["0", "1"]
    assert env["AZ_BATCHAI_NUM_GPUS"] == "2"


def test_a_cluster_without_gpus_asks_slurm_for_none(
    gpu_nodes: SlurmCluster, with_cpu_cluster: Bai, tmp_path: Path
) -> None:
    bai = with_cpu_cluster
    env = _job_env(bai, tmp_path, "cpu", "j3")
    assert "SLURM_JOB_GPUS" not in env
    assert env["AZ_BATCHAI_NUM_GPUS"] == "0"


def test_more_gpus_than_a_host_has_are_refused(on_slurm: Bai, gpu_nodes: SlurmCluster) -> None:
    refused = on_slurm(
        "cluster", "create", "-w", "ws", "-n", "big", "--executor", "slurm",
        "--partition", "debug", "--gpus-per-node", "3", expect=2,
    )  # fmt: skip
    assert "gpusPerNode" in refused.stderr
    assert "no host of its partition has more than 2" in refused.stderr


@pytest.mark.parametrize(
    ("gres", "gpus"),
    [
        ("(null)", 0),
        ("gpu:2", 2),
        ("gpu:a100:4(S:0-1)", 4),
        ("gpu:a100:2,gpu:v100:1", 3),
        ("gpu:tesla:2(S:0,1),mps:200", 2),
        ("mps:100", 0),
    ],
)
def test_gres_of_real_clusters_counted(gres: str, gpus: int) -> None:
    """What ``sinfo %G`` prints on clusters with typed GPUs and sockets (not made here)."""
    from openbai.executors.slurm import gpus_of

    assert gpus_of(gres) == gpus

"""``bai cluster node exec`` and ``bai job node exec``: a command on a node without SSH, run
as a user runs it (a real ``bai`` process, whose terminal the command gets)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from api.support import BAI
from conftest import Bai
from gpu_files import nvidia_device_files
from polling import wait_until

from .conftest import submit


@pytest.fixture
def ws(bai: Bai) -> Bai:
    """As the suite's ``ws``, in process only: node exec runs where the installation is."""
    bai("workspace", "create", "-n", "ws")
    bai("experiment", "create", "-w", "ws", "-n", "exp")
    bai("cluster", "create", "-w", "ws", "-n", "c1", "--nodes", "2")
    bai("storage", "account", "create", "-n", "acct")
    bai("storage", "share", "create", "--account", "acct", "-n", "logs")
    # a new cluster has no nodes until they are allocated
    wait_until(
        lambda: bai.json("cluster", "show", "-w", "ws", "-n", "c1")["allocationState"] == "steady",
        "nodes of c1",
        timeout=60,
    )
    return bai


def bai_exec(bai: Bai, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **bai.env}
    return subprocess.run(
        [BAI, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def cluster_exec(bai: Bai, *args: str) -> subprocess.CompletedProcess[str]:
    return bai_exec(bai, "cluster", "node", "exec", "-w", "ws", "-c", "c1", *args)


def test_cluster_node_exec_runs_on_the_node_named(ws: Bai) -> None:
    ran = cluster_exec(ws, "-n", "c1-1", "--exec", "echo $AZ_BATCH_NODE_ID; echo oops >&2")
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, "c1-1\n", "oops\n")
    first = cluster_exec(ws, "--exec", "echo $AZ_BATCH_NODE_ID $AZ_BATCHAI_MOUNT_ROOT")
    node, mount_root = first.stdout.split()
    assert node == "c1-0" and mount_root.endswith("/c1/0/mounts")
    # the command's exit code is bai's
    assert cluster_exec(ws, "--exec", "exit 7").returncode == 7


def test_cluster_node_exec_is_sealed_off_like_a_job(ws: Bai) -> None:
    # the installation's files (the database, storage keys) are not in the node's sandbox
    private = sorted(p.name for p in ws.home.iterdir() if p.is_file())
    assert private
    seen = cluster_exec(ws, "--exec", f"cd {ws.home} && ls -A; echo end")
    assert seen.returncode == 0, seen.stderr
    assert not set(seen.stdout.split()) & set(private), seen.stdout
    assert "OPENBAI_" not in cluster_exec(ws, "--exec", "env").stdout


@pytest.fixture
def two_gpus(bai_env: dict[str, str]) -> Iterator[None]:
    """GPUs 0 and 1 for c1's two nodes (one each: the default size has one), with their
    device files (this machine has no GPU)."""
    bai_env["OPENBAI_GPUS"] = "0,1"
    with nvidia_device_files(2):
        yield


def test_cluster_node_exec_sees_its_nodes_gpu_alone_as_a_job_does(two_gpus: None, ws: Bai) -> None:
    probe = 'echo "$CUDA_VISIBLE_DEVICES"; ls /dev | grep nvidia | xargs'
    seen = cluster_exec(ws, "-n", "c1-1", "--exec", probe)
    assert seen.returncode == 0, seen.stderr
    assert seen.stdout.splitlines() == ["0", "nvidia1 nvidiactl"]


def test_bad_node_exec_requests_name_what_is_wrong(ws: Bai) -> None:
    unknown = cluster_exec(ws, "-n", "c1-9", "--exec", "true")
    assert unknown.returncode != 0
    assert "c1-9" in unknown.stderr and "c1-0, c1-1" in unknown.stderr
    forward = cluster_exec(ws, "-L", "8888:localhost:8888", "--exec", "true")
    assert forward.returncode == 2 and "--address" in forward.stderr
    gone = bai_exec(ws, "cluster", "node", "exec", "-w", "ws", "-c", "nope", "--exec", "true")
    assert gone.returncode != 0 and "nope" in gone.stderr
    idle = bai_exec(
        ws, "job", "node", "exec", "-w", "ws", "-e", "exp", "-j", "nojob", "--exec", "true"
    )
    assert idle.returncode != 0 and "nojob" in idle.stderr


def test_job_node_exec_reaches_the_running_job(ws: Bai, tmp_path: Path) -> None:
    # the job waits for a file that only the command run through node exec makes
    submit(
        ws,
        tmp_path,
        "j",
        "echo started > $AZ_BATCHAI_JOB_TEMP/state;"
        " while [ ! -e $AZ_BATCHAI_JOB_TEMP/go ]; do sleep 0.1; done; echo released",
    )
    job_temp = "$AZ_BATCHAI_JOB_TEMP_DIR/ws/exp/j"

    def state() -> str:
        ran = bai_exec(
            ws, "job", "node", "exec", "-w", "ws", "-e", "exp", "-j", "j",
            "--exec", f"cat {job_temp}/state 2>/dev/null",
        )  # fmt: skip
        return ran.stdout

    assert wait_until(state, "job j started", timeout=90) == "started\n"
    go = bai_exec(
        ws, "job", "node", "exec", "-w", "ws", "-e", "exp", "-j", "j",
        "--exec", f"touch {job_temp}/go",
    )  # fmt: skip
    assert go.returncode == 0, go.stderr
    assert ws.wait("j", timeout=90)["executionState"] == "succeeded"
    # an ended job is on no node
    after = bai_exec(
        ws, "job", "node", "exec", "-w", "ws", "-e", "exp", "-j", "j", "--exec", "true"
    )
    assert after.returncode != 0 and "not running" in after.stderr


def test_job_node_exec_binds_the_jobs_volumes_not_the_links_it_made(
    ws: Bai, tmp_path: Path
) -> None:
    # another account's share, on this machine beside the job's own
    ws("storage", "account", "create", "-n", "other")
    ws("storage", "share", "create", "--account", "other", "-n", "private")
    (tmp_path / "up").mkdir()
    (tmp_path / "up" / "data.txt").write_text("not yours\n")
    ws("storage", "file", "upload-batch", "--account", "other", "-d", "private",
       "-s", str(tmp_path / "up"), "--no-progress")  # fmt: skip
    private = next(p for p in ws.home.rglob("private") if (p / "data.txt").is_file())
    # the job links it from its temp folder, and writes its own volume
    submit(
        ws,
        tmp_path,
        "j",
        f"ln -s {private} $AZ_BATCHAI_JOB_TEMP/private; echo mine > $AZ_BATCHAI_JOB_MOUNT_ROOT/logs/mine;"
        " echo started > $AZ_BATCHAI_JOB_TEMP/state; sleep 60",
    )
    job_temp = "$AZ_BATCHAI_JOB_TEMP_DIR/ws/exp/j"

    def on_node(command: str) -> subprocess.CompletedProcess[str]:
        return bai_exec(ws, "job", "node", "exec", "-w", "ws", "-e", "exp", "-j", "j",
                        "--exec", command)  # fmt: skip

    wait_until(lambda: on_node(f"cat {job_temp}/state").stdout, "job j started", timeout=90)
    # the job's own volume is there, through its link, as in the job
    seen = on_node(f"cat {job_temp}/mounts/logs/mine")
    assert (seen.returncode, seen.stdout) == (0, "mine\n"), seen.stderr
    # the folder its own link points to is not bound, nor there at its own path
    for path in (f"{job_temp}/private/data.txt", f"{private}/data.txt"):
        looked = on_node(f"cat {path}")
        assert looked.returncode != 0 and "not yours" not in looked.stdout, path
    ws("job", "terminate", "-w", "ws", "-e", "exp", "-n", "j", "-y")


def test_node_exec_runs_within_the_node_slots_limits(ws: Bai) -> None:
    ws("cluster", "create", "-w", "ws", "-n", "small", "--nodes", "1",
       "--memory-per-node", "128M", "--processes-per-node", "40")  # fmt: skip

    def on_small(command: str) -> subprocess.CompletedProcess[str]:
        return bai_exec(ws, "cluster", "node", "exec", "-w", "ws", "-c", "small", "--exec", command)

    wait_until(
        lambda: (
            ws.json("cluster", "show", "-w", "ws", "-n", "small")["allocationState"] == "steady"
        ),
        "nodes of small",
        timeout=60,
    )
    fine = on_small("python3 -c 'b = bytearray(32 * 2**20); print(len(b))'")
    assert (fine.returncode, fine.stdout) == (0, f"{32 * 2**20}\n"), fine.stderr
    # past the slot's memory: killed inside its group, as a job's task would be
    big = on_small("python3 -c 'b = bytearray(400 * 2**20); print(len(b))'")
    assert big.returncode != 0 and big.stdout == "", big
    forks = on_small(
        "python3 -c '\nimport os, time\nn = 0\ntry:\n    for _ in range(100):\n"
        "        if os.fork() == 0:\n            time.sleep(2); os._exit(0)\n        n += 1\n"
        "except OSError:\n    pass\nprint(n)'"
    )
    assert forks.returncode == 0, forks.stderr
    assert int(forks.stdout) < 40  # the fork past the process limit failed


def test_node_exec_sees_no_munge_socket(
    ws: Bai, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # where Slurm's configuration says munge listens: a job user reaching it could submit
    # work of its own outside openbai
    # (not below /tmp, which every sandbox has empty)
    munge = Path(tempfile.mkdtemp(prefix="openbai-test-", dir="/var/tmp")) / "munge"
    munge.parent.chmod(0o755)
    munge.mkdir(mode=0o755)
    (munge / "munge.socket").write_text("")
    request.addfinalizer(lambda: shutil.rmtree(munge.parent))
    conf = tmp_path / "slurm.conf"
    conf.write_text(f"AuthType=auth/munge\nAuthInfo=socket={munge}/munge.socket\n")
    env = {**os.environ, **ws.env, "SLURM_CONF": str(conf)}
    seen = subprocess.run(
        [BAI, "cluster", "node", "exec", "-w", "ws", "-c", "c1", "--exec", f"ls -A {munge}"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert (seen.returncode, seen.stdout) == (0, ""), seen.stderr

"""The local two-node Slurm cluster (scripts/services/slurm.sh) works as openbai expects."""

from __future__ import annotations

import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from slurm_fixture import SlurmCluster

# the fixture comes from tests/slurm_fixture.py, loaded by the root conftest

pytestmark = pytest.mark.slurm


def _sbatch(cluster: SlurmCluster, *args: str) -> str:
    proc = cluster.run(["sbatch", "--parsable", "-p", cluster.partition, *args])
    return proc.stdout.strip().split(";")[0]


def _job_pids(job_id: str) -> list[int]:
    """Processes on this machine (either node) that belong to the job, by SLURM_JOB_ID."""
    marker = f"SLURM_JOB_ID={job_id}".encode()
    pids = []
    for proc_dir in Path("/proc").iterdir():
        if not proc_dir.name.isdigit():
            continue
        try:
            environ = (proc_dir / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            pids.append(int(proc_dir.name))
    return pids


def test_two_nodes_idle(slurm_cluster: SlurmCluster) -> None:
    out = slurm_cluster.run(
        ["sinfo", "-h", "-N", "-p", slurm_cluster.partition, "-o", "%N %c"]
    ).stdout
    nodes = {line.split()[0]: int(line.split()[1]) for line in out.splitlines() if line.strip()}
    assert nodes == {"node1": 2, "node2": 2}
    assert slurm_cluster.nodes == ["node1", "node2"]


def test_srun_two_nodes_two_hostnames(slurm_cluster: SlurmCluster) -> None:
    proc = slurm_cluster.run(["srun", "-N2", "-p", slurm_cluster.partition, "hostname"], timeout=60)
    hostnames = proc.stdout.split()
    assert sorted(hostnames) == ["node1", "node2"]

    proc = slurm_cluster.run(
        [
            "srun",
            "-N2",
            "--ntasks-per-node=2",
            "-p",
            slurm_cluster.partition,
            "sh",
            "-c",
            'echo "$SLURMD_NODENAME $(hostname) $SLURM_PROCID"',
        ],
        timeout=60,
    )
    rows = sorted(tuple(line.split()) for line in proc.stdout.splitlines())
    assert len(rows) == 4
    assert {(node, host) for node, host, _ in rows} == {("node1", "node1"), ("node2", "node2")}
    assert sorted(rank for _, _, rank in rows) == ["0", "1", "2", "3"]


def test_sbatch_writes_file(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    target = tmp_path / "result.txt"
    job_id = _sbatch(
        slurm_cluster,
        "-o",
        str(tmp_path / "slurm-%j.out"),
        "--wrap",
        f"echo {token} > {target}; hostname >> {target}",
    )
    deadline = time.monotonic() + 60
    while True:
        queued = slurm_cluster.run(["squeue", "-h", "-j", job_id, "-o", "%T"], check=False)
        if queued.returncode == 0 and not queued.stdout.strip():
            break  # no longer in the queue
        state = slurm_cluster.job_state(job_id)
        if state is None or state == "COMPLETED":
            break
        assert state in {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING"}, state
        assert time.monotonic() < deadline, f"job {job_id} still {state}"
        time.sleep(0.2)
    info = slurm_cluster.job_info(job_id)
    assert info is None or (info["JobState"], info["ExitCode"]) == ("COMPLETED", "0:0")
    lines = target.read_text().split()
    assert lines[0] == token
    assert lines[1] in {"node1", "node2"}


def test_batch_job_spans_two_nodes(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    """A 2-node batch job; its srun (from inside node1's namespace) runs one task per node."""
    job_id = _sbatch(
        slurm_cluster,
        "-N2",
        "--ntasks-per-node=1",
        "-o",
        str(tmp_path / "out.txt"),
        "--wrap",
        f"srun sh -c 'hostname > {tmp_path}/host-$SLURM_PROCID.txt'",
    )
    assert slurm_cluster.wait_job(job_id) in {"COMPLETED", None}
    hosts = sorted(p.read_text().strip() for p in tmp_path.glob("host-*.txt"))
    assert hosts == ["node1", "node2"], (tmp_path / "out.txt").read_text()


def test_scancel_stops_running_job(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    job_id = _sbatch(slurm_cluster, "-o", str(tmp_path / "out.txt"), "--wrap", "sleep 300")
    assert (
        slurm_cluster.wait_job(job_id, {"RUNNING", "COMPLETED", "CANCELLED", "FAILED"}, timeout=60)
        == "RUNNING"
    )
    deadline = time.monotonic() + 30
    while not _job_pids(job_id):
        assert time.monotonic() < deadline, "job processes never appeared"
        time.sleep(0.1)

    slurm_cluster.run(["scancel", job_id])
    assert slurm_cluster.wait_job(job_id, timeout=60) in {"CANCELLED", None}
    deadline = time.monotonic() + 30
    while pids := _job_pids(job_id):
        assert time.monotonic() < deadline, f"job processes still running: {pids}"
        time.sleep(0.2)


@pytest.fixture
def loopback_server() -> Iterator[int]:
    """A TCP server on the host's 127.0.0.1 that answers every connection with 'pong'."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"pong\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        server.close()


def test_jobs_reach_host_loopback_via_forward(
    slurm_cluster: SlurmCluster, loopback_server: int
) -> None:
    port = loopback_server
    probe = (
        "import socket;"
        f"s=socket.create_connection(('127.0.0.1',{port}),timeout=10);"
        "print(socket.gethostname(), s.recv(16).decode().strip())"
    )
    cmd = ["srun", "-N2", "-p", slurm_cluster.partition, sys.executable, "-c", probe]
    # without a forwarder the node's own loopback has nothing on that port
    assert slurm_cluster.run(cmd, check=False, timeout=60).returncode != 0
    slurm_cluster.forward_port(port)
    try:
        out = slurm_cluster.run(cmd, timeout=60).stdout
        assert sorted(out.splitlines()) == ["node1 pong", "node2 pong"]
    finally:
        slurm_cluster.unforward_port(port)

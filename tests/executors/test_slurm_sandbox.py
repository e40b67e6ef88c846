"""Hostile jobs on the two-node Slurm cluster: the runner seals tasks off there as on the
local executor (tests/runtime/test_sandbox.py has the whole suite)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from api.support import BAI
from conftest import Bai
from job_files import ALLREDUCE, write_job, write_mpi_job
from polling import wait_until
from runtime.hostile import FORK_BOMB, SEALED, assert_gone_within, outside_tmp

pytestmark = SEALED

LEAK = "LEAKED"


@pytest.fixture
def bai_env(bai_env: dict[str, str]) -> Iterator[dict[str, str]]:
    yield from outside_tmp(bai_env)


def job_json(tmp_path: Path, name: str, command: str, **extra: Any) -> str:
    return write_job(tmp_path / f"{name}.json", command, **extra)


def run(bai: Bai, tmp_path: Path, name: str, command: str, **extra: Any) -> dict[str, Any]:
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", "gpu", "-n", name,
        "-f", job_json(tmp_path, name, command, **extra))  # fmt: skip
    return bai.wait(name, timeout=120)


def output(bai: Bai, job: str, name: str = "stdout.txt") -> str:
    return str(bai("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", job, "-f", name).stdout)


def probe(path: str) -> str:
    read = f"if [ -d {path} ]; then ls -A {path} | grep -q .; else cat {path} >/dev/null; fi"
    return f"if ( {read} ) 2>/dev/null; then echo {LEAK} {path}; else echo sealed {path}; fi"


def test_a_slurm_job_reads_nothing_of_the_installation(on_slurm: Bai, tmp_path: Path) -> None:
    bai = on_slurm
    (bai.home / "api.key").write_bytes(os.urandom(32))
    first = run(bai, tmp_path, "first", "echo first")
    assert first["executionState"] == "succeeded"
    (other_run,) = (bai.home / "runs").iterdir()
    targets = [bai.home / "api.key", bai.home / "openbai.db", other_run, "/etc/shadow"]
    shown = run(bai, tmp_path, "nosy", "; ".join([probe(str(t)) for t in targets] + ["id -u"]))
    assert shown["executionState"] == "succeeded"
    out = output(bai, "nosy")
    assert LEAK not in out
    assert out.count("sealed") == len(targets)
    assert out.splitlines()[-1] != "0"
    assert "sandboxed (bubblewrap" in output(bai, "nosy", "execution.log")


def test_an_installation_left_readable_is_still_hidden_from_slurm_jobs(
    on_slurm: Bai, tmp_path: Path
) -> None:
    bai = on_slurm
    assert not str(bai.home).startswith("/tmp/")
    assert run(bai, tmp_path, "first", "echo first")["executionState"] == "succeeded"
    (bai.home / "api.key").write_bytes(os.urandom(32))
    for path in [bai.home, *bai.home.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    (other_run,) = (bai.home / "runs").iterdir()
    targets = [bai.home / "api.key", bai.home / "config.json", other_run]
    shown = run(bai, tmp_path, "open", "; ".join(probe(str(t)) for t in targets))
    assert shown["executionState"] == "succeeded"
    out = output(bai, "open")
    assert LEAK not in out and out.count("sealed") == len(targets)


def test_mpi_ranks_on_every_node_are_sealed_off_and_cannot_reach_slurm(
    on_slurm: Bai, tmp_path: Path
) -> None:
    """mpirun's ranks on the other node were started by Slurm's launcher as the Slurm job's
    owner (root) outside any sandbox, and the first node's with root's uid: able to read root's
    files and to ``srun`` anything anywhere as root."""
    bai = on_slurm
    (bai.home / "api.key").write_bytes(os.urandom(32))
    targets = [bai.home / "api.key", "/etc/shadow"]
    rank = "; ".join(
        [
            *(probe(str(t)) for t in targets),
            'echo "rank $OMPI_COMM_WORLD_RANK on $(hostname) as $(id -u)"',
            f"srun -N1 -n1 --overlap echo {LEAK} srun 2>/dev/null || echo sealed srun",
            ALLREDUCE,  # and they still talk to each other, across the hosts
        ]
    )
    job = write_mpi_job(tmp_path / "mpi.json", rank)
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", "gpu", "-n", "mpi", "-f", job)
    shown = bai.wait("mpi", timeout=120)
    assert shown["executionState"] == "succeeded", bai.why(shown)
    out = output(bai, "mpi")
    assert LEAK not in out
    assert out.count("sealed") == 2 * (len(targets) + 1), out
    ranks = sorted(line for line in out.splitlines() if line.startswith("rank"))
    assert [r.rsplit(" as ", 1)[0] for r in ranks] == ["rank 0 on node1", "rank 1 on node2"]
    assert all(not r.endswith(" as 0") for r in ranks), ranks
    assert "starting MPI daemon" in output(bai, "mpi", "execution-node2.log")
    assert sorted(line for line in out.splitlines() if line.startswith("allreduce")) == [
        "allreduce 0 3",
        "allreduce 1 3",
    ]


def test_a_slurm_job_sees_only_its_own_processes(on_slurm: Bai, tmp_path: Path) -> None:
    me = os.getpid()
    command = (
        "ps -e -o comm= | sort -u | tr '\\n' ' '; echo; "
        f"if kill -0 {me} 2>/dev/null; then echo {LEAK} kill; else echo sealed kill; fi"
    )
    assert run(on_slurm, tmp_path, "ps", command)["executionState"] == "succeeded"
    seen, signalled = output(on_slurm, "ps").splitlines()
    assert set(seen.split()) <= {"bwrap", "bash", "ps", "sort", "tr"}
    assert signalled == "sealed kill"


def test_a_host_file_cannot_be_hard_linked_into_outputs_on_slurm(
    on_slurm: Bai, tmp_path: Path
) -> None:
    outputs = [{"id": "OUT", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs"}]
    command = "ln /etc/passwd $AZ_BATCHAI_OUTPUT_OUT/passwd && echo LEAKED link || echo sealed link"
    shown = run(on_slurm, tmp_path, "link", command, outputDirectories=outputs)
    assert shown["executionState"] == "succeeded"
    assert output(on_slurm, "link").strip() == "sealed link"
    assert (
        on_slurm.json("job", "file", "list", "-w", "ws", "-e", "exp", "-j", "link", "-d", "OUT")
        == []
    )


def tagged(tag: str) -> list[int]:
    return [
        p.pid for p in psutil.process_iter(["cmdline"]) if tag in " ".join(p.info["cmdline"] or [])
    ]


def gone_within(tag: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while tagged(tag):
        assert time.monotonic() < deadline, f"still running after the job ended: {tagged(tag)}"
        time.sleep(0.05)


def test_nothing_outlives_a_slurm_job(on_slurm: Bai, tmp_path: Path) -> None:
    daemons = "sleep 47151 & setsid sleep 47152 & (sleep 47153 &); "
    shown = run(on_slurm, tmp_path, "ok", daemons + "echo main done")
    assert shown["executionState"] == "succeeded"
    gone_within("sleep 4715", 2)
    on_slurm("job", "create", "-w", "ws", "-e", "exp", "-c", "gpu", "-n", "held",
             "-f", job_json(tmp_path, "held", daemons.replace("4715", "4716") + "sleep 300"))  # fmt: skip
    deadline = time.monotonic() + 120
    while len(tagged("sleep 4716")) < 3:  # the job runs, its daemons started
        assert time.monotonic() < deadline, "the job's processes never started"
        time.sleep(0.1)
    on_slurm("job", "terminate", "-w", "ws", "-e", "exp", "-n", "held", "-y")
    assert (
        on_slurm.wait("held", timeout=120)["executionInfo"]["errors"][0]["code"] == "JobTerminated"
    )
    gone_within("sleep 4716", 2)


def test_nothing_outlives_a_slurm_jobs_wall_clock(on_slurm: Bai, tmp_path: Path) -> None:
    daemons = "sleep 47171 & setsid sleep 47172 & (sleep 47173 &); sleep 0.2; "
    started = "echo started $(ps -e -o args= | grep -c '^sleep 4717'); "
    shown = run(on_slurm, tmp_path, "slow", daemons + started + "sleep 300",
                constraints={"maxWallClockTime": "PT5S"})  # fmt: skip
    assert shown["executionInfo"]["errors"][0]["code"] == "JobWallClockTimeExceeded", shown
    assert output(on_slurm, "slow") == "started 3\n"
    gone_within("sleep 4717", 2)


def test_a_slurm_job_has_a_process_limit_even_where_slurm_sets_none(
    on_slurm: Bai, tmp_path: Path
) -> None:
    shown = run(on_slurm, tmp_path, "plain", "echo plain")
    assert shown["executionState"] == "succeeded"
    assert "4096 processes" in output(on_slurm, "plain", "execution.log")

    on_slurm("cluster", "create", "-w", "ws", "-n", "few", "--executor", "slurm",
             "--partition", "debug", "--processes-per-node", "64")  # fmt: skip
    on_slurm("job", "create", "-w", "ws", "-e", "exp", "-c", "few", "-n", "bomb",
             "-f", job_json(tmp_path, "bomb", FORK_BOMB))  # fmt: skip
    assert on_slurm.wait("bomb", timeout=120)["executionState"] == "succeeded"
    stopped = int(output(on_slurm, "bomb").split()[-1])
    assert 0 < stopped < 64
    assert "reached the limit of 64 processes" in output(on_slurm, "bomb", "execution.log")
    assert_gone_within("time.sleep(60)", 2)


def node_exec(bai: Bai, *args: str) -> subprocess.CompletedProcess[str]:
    """``bai ... node exec`` as a user runs it (a real process: the command gets its terminal)."""
    env = {**os.environ, **bai.env}
    return subprocess.run(
        [BAI, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_node_exec_on_a_slurm_node_runs_sealed_off_as_the_job_user(
    on_slurm: Bai, tmp_path: Path
) -> None:
    bai = on_slurm
    (bai.home / "api.key").write_bytes(os.urandom(32))
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", "gpu", "-n", "waiting",
        "-f", job_json(tmp_path, "waiting", "echo started; sleep 120"))  # fmt: skip
    looks = "; ".join([probe(str(bai.home / "api.key")), probe(str(bai.home / "runs")), "id -u"])
    job_exec = ("job", "node", "exec", "-w", "ws", "-e", "exp", "-j", "waiting", "--exec", looks)
    seen = wait_until(
        lambda: (ran := node_exec(bai, *job_exec)).returncode == 0 and ran,
        "a node exec on the running job's node",
        timeout=90,
    )
    assert isinstance(seen, subprocess.CompletedProcess)
    assert LEAK not in seen.stdout and seen.stdout.count("sealed") == 2, seen.stdout
    assert seen.stdout.splitlines()[-1] not in ("", "0"), seen.stdout  # not root
    # its node's job temp folders and its volumes (an embedded one), as the job has them
    temp = node_exec(bai, "job", "node", "exec", "-w", "ws", "-e", "exp", "-j", "waiting",
                     "--exec", "ls $AZ_BATCHAI_JOB_TEMP_DIR/ws/exp/waiting/mounts/logs/ | grep -q . && echo ok")  # fmt: skip
    own = node_exec(bai, "cluster", "node", "exec", "-w", "ws", "-c", "gpu", "--exec", looks)
    assert own.returncode == 0, own.stderr
    assert LEAK not in own.stdout and own.stdout.splitlines()[-1] != "0", own.stdout
    bai("job", "terminate", "-w", "ws", "-e", "exp", "-n", "waiting", "-y")
    assert (temp.returncode, temp.stdout) == (0, "ok\n"), temp.stderr


def test_a_slurm_jobs_nodes_are_its_hosts_and_node_exec_runs_on_the_one_named(
    on_slurm: Bai, tmp_path: Path
) -> None:
    bai = on_slurm
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", "gpu", "-n", "two",
        "-f", job_json(tmp_path, "two", "sleep 120", nodeCount=2))  # fmt: skip

    def listed() -> list[dict[str, Any]]:
        return list(bai.json("job", "node", "list", "-w", "ws", "-e", "exp", "-j", "two"))

    nodes = wait_until(listed, "the job's nodes", timeout=90)
    assert sorted(n["nodeId"] for n in nodes) == ["node1", "node2"]
    assert all(n["ipAddress"] for n in nodes), nodes
    on = ("job", "node", "exec", "-w", "ws", "-e", "exp", "-j", "two")
    second = node_exec(bai, *on, "-n", nodes[1]["nodeId"], "--exec", "hostname")
    assert (second.returncode, second.stdout) == (0, f"{nodes[1]['nodeId']}\n"), second.stderr
    first = node_exec(bai, *on, "--exec", "hostname")  # the first node alone
    assert (first.returncode, first.stdout) == (0, f"{nodes[0]['nodeId']}\n"), first.stderr
    hosts = bai.json("cluster", "node", "list", "-w", "ws", "-c", "gpu")
    assert sorted(n["nodeId"] for n in hosts) == ["node1", "node2"]
    bai("job", "terminate", "-w", "ws", "-e", "exp", "-n", "two", "-y")

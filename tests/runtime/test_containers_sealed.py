"""Hostile image jobs (``containerSettings``, run by podman): each tries what a job must not do,
as tests/runtime/test_sandbox.py's host jobs do, and ends as issue 11 says: the container's
processes run as the job user with no privileges, see nothing of the installation but their
volumes, stay within the node slot's limits, and nothing they start outlives the job."""

from __future__ import annotations

import os
import pwd
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import Bai
from job_files import with_logs_share, write_job
from podman_fixture import Podman, podman_fixture  # noqa: F401  (the fixture "podman")

pytestmark = [
    pytest.mark.podman,
    pytest.mark.timeout(600),
    pytest.mark.skipif(os.getuid() != 0, reason="the job user is only switched under root"),
]

LEAK = "LEAKED"


@pytest.fixture
def ws(bai: Bai, podman: Podman) -> Bai:
    return with_logs_share(bai)


def in_image(podman: Podman, **extra: Any) -> dict[str, Any]:
    return {"containerSettings": {"imageSourceRegistry": {"image": podman.image}}, **extra}


def submit(bai: Bai, tmp_path: Path, podman: Podman, name: str, command: str, **extra: Any) -> None:
    cluster = extra.pop("cluster", "c1")
    path = write_job(tmp_path / f"{name}.json", command, **in_image(podman, **extra))
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", cluster, "-n", name, "-f", path)


def run(bai: Bai, tmp_path: Path, podman: Podman, name: str, command: str, **extra: Any) -> Any:
    submit(bai, tmp_path, podman, name, command, **extra)
    return bai.wait(name)


def output(bai: Bai, job: str, name: str = "stdout.txt") -> str:
    return str(bai("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", job, "-f", name).stdout)


def probe(path: str) -> str:
    """A shell line that tries to read ``path`` (a file, or a directory's listing)."""
    read = f"if [ -d {path} ]; then ls -A {path} | grep -q .; else cat {path} >/dev/null; fi"
    return f"if ( {read} ) 2>/dev/null; then echo {LEAK} {path}; else echo sealed {path}; fi"


def job_user() -> str:
    for name in ("openbai-job", "nobody"):
        try:
            return pwd.getpwnam(os.environ.get("OPENBAI_JOB_USER") or name).pw_name
        except KeyError:
            continue
    raise AssertionError("no job user on this machine")


def test_an_image_job_reads_nothing_of_the_installation_and_is_never_root(
    ws: Bai, podman: Podman, tmp_path: Path
) -> None:
    ws("storage", "account", "create", "-n", "other")
    ws("storage", "share", "create", "--account", "other", "-n", "private")
    ws("cluster", "create", "-w", "ws", "-n", "one", "--nodes", "1")
    first = run(ws, tmp_path, podman, "first", "echo first", cluster="one")
    assert first["executionState"] == "succeeded"
    (ws.home / "api.key").write_bytes(os.urandom(32))  # as the server makes it
    other_run = next((ws.home / "runs").iterdir())
    (node_root,) = (ws.home / "nodes").glob("*/ws/one/0")
    (node_root / "private.txt").write_text("the node's, not the job's")
    targets = [
        ws.home / "api.key",
        ws.home / "openbai.db",
        ws.home / "config.json",
        other_run,
        other_run / "plan.json",
        ws.home / "storage" / "other",
        "$AZ_BATCHAI_MOUNT_ROOT/../private.txt",  # its node root: only its volumes and job tree
        "/etc/shadow",  # the image's: root's only
        "$AZ_BATCHAI_SHARED_JOB_TEMP/../plan.json",
    ]
    me = os.getpid()
    checks = [
        *[probe(str(t)) for t in targets],
        f"if kill -0 {me} 2>/dev/null; then echo {LEAK} kill; else echo sealed kill; fi",
        "ls -d /proc/[0-9]* | wc -l",
        "whoami",
        "id -u",
    ]
    shown = run(ws, tmp_path, podman, "nosy", "; ".join(checks), cluster="one")
    assert shown["executionState"] == "succeeded", shown
    lines = output(ws, "nosy").splitlines()
    assert LEAK not in "\n".join(lines)
    sealed = [line.split()[0] for line in lines[: len(targets) + 1]]
    assert sealed == ["sealed"] * (len(targets) + 1), lines
    processes, whoami, uid = lines[len(targets) + 1 :]
    assert int(processes) < 10  # its own: the container's first process, bash, ls, wc
    assert whoami == job_user()
    assert uid == str(pwd.getpwnam(job_user()).pw_uid) != "0"
    log = output(ws, "nosy", "execution.log")
    assert (
        f"container sealed by podman (own PID namespace, no capabilities, no new privileges) as user {whoami}"
        in log
    )
    assert "limits " in log and " MiB memory" in log


@pytest.fixture
def small(ws: Bai) -> Bai:
    """Cluster ``small``: one node of 1 CPU, 200 MiB and 64 processes."""
    ws("cluster", "create", "-w", "ws", "-n", "small", "--nodes", "1", "--cpus-per-node", "1",
       "--memory-per-node", "200M", "--processes-per-node", "64")  # fmt: skip
    return ws


def test_an_image_job_past_its_memory_limit_fails_as_a_host_job_does(
    small: Bai, podman: Podman, tmp_path: Path
) -> None:
    hog = "python3 -c 'b = bytearray(600 * 2**20); print(len(b))'"
    shown = run(small, tmp_path, podman, "hog", hog, cluster="small")
    assert shown["executionState"] == "failed"
    error = shown["executionInfo"]["errors"][0]
    assert error["code"] == "JobMemoryLimitExceeded"
    assert "200 MiB" in error["message"]
    log = output(small, "hog", "execution.log")
    assert "limits 1 CPUs, 200 MiB memory, 64 processes" in log
    after = run(small, tmp_path, podman, "after", "echo fine", cluster="small")
    assert after["executionState"] == "succeeded"


def test_an_image_job_fork_bomb_hits_its_process_limit(
    small: Bai, podman: Podman, tmp_path: Path
) -> None:
    bomb = (
        "python3 -c 'import os, time\nn = 0\ntry:\n while True:\n  if os.fork() == 0:\n"
        '   time.sleep(60); os._exit(0)\n  n += 1\nexcept OSError as e:\n print("stopped at", n)\''
    )
    shown = run(small, tmp_path, podman, "bomb", bomb, cluster="small")
    assert shown["executionState"] == "succeeded", shown
    stopped = int(output(small, "bomb").split()[-1])
    assert 0 < stopped < 64
    assert "reached the limit of 64 processes" in output(small, "bomb", "execution.log")
    assert_gone_within("time.sleep(60)", 2)


def leftovers(tag: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if tag in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


def assert_gone_within(tag: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while leftovers(tag):
        if time.monotonic() > deadline:
            raise AssertionError(f"still running {seconds} s after the job ended: {leftovers(tag)}")
        time.sleep(0.05)


def daemons(tag: int) -> str:
    """A background sleep, a setsid one and a double-forked one, all tagged."""
    return f"sleep {tag}1 & setsid sleep {tag}2 & (sleep {tag}3 &); (setsid bash -c 'sleep {tag}4 &' &); "


def test_nothing_an_image_job_started_outlives_its_main_command(
    ws: Bai, podman: Podman, tmp_path: Path
) -> None:
    shown = run(ws, tmp_path, podman, "ok", daemons(5711) + "sleep 0.2; echo main done")
    assert shown["executionState"] == "succeeded", shown
    assert output(ws, "ok") == "main done\n"
    assert_gone_within("sleep 5711", 2)


def test_nothing_an_image_job_started_outlives_the_wall_clock(
    ws: Bai, podman: Podman, tmp_path: Path
) -> None:
    shown = run(ws, tmp_path, podman, "slow", daemons(5713) + "sleep 300",
                constraints={"maxWallClockTime": "PT3S"})  # fmt: skip
    assert shown["executionInfo"]["errors"][0]["code"] == "JobWallClockTimeExceeded"
    assert_gone_within("sleep 5713", 2)

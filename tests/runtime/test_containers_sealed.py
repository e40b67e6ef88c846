"""Hostile image jobs (``containerSettings``, run by podman): each tries what a job must not do,
as tests/runtime/test_sandbox.py's host jobs do, and ends as issue 11 says: the container's
processes are root inside (as on Batch AI) but the job user on the host, with no privileges
there, see nothing of the installation but their volumes, stay within the node slot's limits,
and nothing they start outlives the job."""

from __future__ import annotations

import os
import pwd
from pathlib import Path
from typing import Any

import pytest
from conftest import Bai
from job_files import with_logs_share, write_job
from podman_fixture import Podman, podman_fixture  # noqa: F401  (the fixture "podman")

from .hostile import FORK_BOMB, LEAK, assert_gone_within, daemons

pytestmark = [
    pytest.mark.podman,
    pytest.mark.timeout(600),
    pytest.mark.skipif(os.getuid() != 0, reason="the job user is only switched under root"),
]

SEG = "jobOutputDirectoryPathSegment"


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
        # the image's (the host's is not there): root's, but of group shadow, which the user
        # namespace does not have, so even the container's root cannot read it
        "/etc/shadow",
        "$AZ_BATCHAI_SHARED_JOB_TEMP/../plan.json",
    ]
    me = os.getpid()
    checks = [
        *[probe(str(t)) for t in targets],
        f"if kill -0 {me} 2>/dev/null; then echo {LEAK} kill; else echo sealed kill; fi",
        "ls -d /proc/[0-9]* | wc -l",
        "id -u",
    ]
    shown = run(ws, tmp_path, podman, "nosy", "; ".join(checks), cluster="one")
    assert shown["executionState"] == "succeeded", shown
    lines = output(ws, "nosy").splitlines()
    assert LEAK not in "\n".join(lines)
    sealed = [line.split()[0] for line in lines[: len(targets) + 1]]
    assert sealed == ["sealed"] * (len(targets) + 1), lines
    processes, uid = lines[len(targets) + 1 :]
    assert int(processes) < 10  # its own: the container's first process, bash, ls, wc
    assert uid == "0"  # root inside, as Batch AI's image jobs were
    log = output(ws, "nosy", "execution.log")
    assert (
        "container sealed by podman (own PID namespace, no capabilities, no new privileges) "
        f"as root inside, user {job_user()} (uid {pwd.getpwnam(job_user()).pw_uid}) on the host"
        in log
    )
    assert "limits " in log and " MiB memory" in log


def test_job_preparation_is_root_in_the_image_and_the_job_user_on_the_host(
    ws: Bai, podman: Podman, tmp_path: Path
) -> None:
    ws("cluster", "create", "-w", "ws", "-n", "one", "--nodes", "1")
    share = ws.home / "storage" / "acct" / "file" / "logs"
    first = run(ws, tmp_path, podman, "first", "echo first", cluster="one")
    assert first["executionState"] == "succeeded"
    # a host directory on its volume that is root's: the job's root is not the host's
    (share / "roots").mkdir(mode=0o755)
    (share / "roots" / "file.txt").write_text("root's")
    outputs = [{"id": "OUT", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs"}]
    command = (
        "cat /opt/prepared; echo mine > $AZ_BATCHAI_OUTPUT_OUT/result.txt; "
        f"if echo x >> {{v}}/roots/file.txt 2>/dev/null; then echo {LEAK} write; else echo sealed write; fi; "
        f"if touch {{v}}/roots/new 2>/dev/null; then echo {LEAK} create; else echo sealed create; fi; "
        f"if chmod 777 {{v}}/roots 2>/dev/null; then echo {LEAK} chmod; else echo sealed chmod; fi"
    ).format(v="$AZ_BATCHAI_JOB_MOUNT_ROOT/logs")
    shown = run(
        ws, tmp_path, podman, "prep", command, cluster="one", outputDirectories=outputs,
        jobPreparation={"commandLine": "touch /opt/prepared && id -u > /opt/prepared"},
    )  # fmt: skip
    assert shown["executionState"] == "succeeded", shown
    lines = output(ws, "prep").splitlines()
    assert lines == ["0", "sealed write", "sealed create", "sealed chmod"]
    assert (share / "roots" / "file.txt").read_text() == "root's"
    assert not (share / "roots" / "new").exists()
    # what it wrote is the job user's on the host: the installation reads it, a later host
    # job (the same user) deletes it
    result = share / shown[SEG] / "outputs" / "result.txt"
    assert result.stat().st_uid == pwd.getpwnam(job_user()).pw_uid
    streamed = ws("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "prep",
                  "-d", "OUT", "-f", "result.txt")  # fmt: skip
    assert streamed.stdout == "mine\n"
    path = write_job(
        tmp_path / "cleaner.json",
        f"rm $AZ_BATCHAI_JOB_MOUNT_ROOT/logs/{shown[SEG]}/outputs/result.txt",
    )
    ws("job", "create", "-w", "ws", "-e", "exp", "-c", "one", "-n", "cleaner", "-f", path)
    assert ws.wait("cleaner")["executionState"] == "succeeded"
    assert not result.exists()


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
    where_started = set(os.listdir())  # the dispatcher's working directory, and the runner's
    shown = run(small, tmp_path, podman, "hog", hog, cluster="small")
    assert shown["executionState"] == "failed"
    # podman's monitor notes the kill in a file `oom` where it runs: with the job, not here
    assert set(os.listdir()) == where_started
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
    shown = run(small, tmp_path, podman, "bomb", FORK_BOMB, cluster="small")
    assert shown["executionState"] == "succeeded", shown
    stopped = int(output(small, "bomb").split()[-1])
    assert 0 < stopped < 64
    assert "reached the limit of 64 processes" in output(small, "bomb", "execution.log")
    assert_gone_within("time.sleep(60)", 2)


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

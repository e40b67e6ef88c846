"""Hostile jobs on the local executor: each tries what a job must not do (read the
installation's secrets, other jobs' files, root-only host files; see or signal other
processes; leave processes behind; exhaust memory or processes) and ends as issue 11 says."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import Bai
from job_files import logged_job, with_logs_share, write_job
from nfs_fixture import Nfs, nfs_server
from plans import job_plan
from polling import wait_until

import openbai
from openbai.plan.job_plan import MountSpec, SetupTaskSpec

from .hostile import (
    FORK_BOMB,
    LEAK,
    SEALED,
    assert_gone_within,
    daemons,
    leftovers,
    outside_tmp,
)

pytestmark = SEALED

__all__ = ["nfs_server"]  # the fixture


def job_json(tmp_path: Path, name: str, command: str, **extra: Any) -> str:
    return write_job(tmp_path / f"{name}.json", command, **extra)


@pytest.fixture
def bai_env(bai_env: dict[str, str]) -> Iterator[dict[str, str]]:
    yield from outside_tmp(bai_env)


@pytest.fixture
def ws(bai: Bai) -> Bai:
    assert not str(bai.home).startswith("/tmp/")
    return with_logs_share(bai)


def run(
    bai: Bai, tmp_path: Path, name: str, command: str, *, cluster: str = "c1", **extra: Any
) -> dict[str, Any]:
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", cluster, "-n", name,
        "-f", job_json(tmp_path, name, command, **extra))  # fmt: skip
    return bai.wait(name)


def output(bai: Bai, job: str, name: str = "stdout.txt") -> str:
    return str(bai("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", job, "-f", name).stdout)


def probe(path: str) -> str:
    """A shell line that tries to read ``path`` (a file, or a directory's listing)."""
    read = f"if [ -d {path} ]; then ls -A {path} | grep -q .; else cat {path} >/dev/null; fi"
    return f"if ( {read} ) 2>/dev/null; then echo {LEAK} {path}; else echo sealed {path}; fi"


def test_a_job_reads_nothing_of_the_installation_or_root_only_files(
    ws: Bai, tmp_path: Path
) -> None:
    ws("storage", "account", "create", "-n", "other")
    ws("storage", "share", "create", "--account", "other", "-n", "private")
    first = run(ws, tmp_path, "first", "echo first")
    assert first["executionState"] == "succeeded"
    runs = ws.home / "runs"
    (ws.home / "api.key").write_bytes(os.urandom(32))  # as the server makes it
    other_run = next(runs.iterdir())
    targets = [
        ws.home / "api.key",
        ws.home / "openbai.db",
        ws.home / "config.json",
        other_run,
        other_run / "plan.json",
        ws.home / "storage" / "other",
        "/etc/shadow",
        "$AZ_BATCHAI_SHARED_JOB_TEMP/../plan.json",
    ]
    shown = run(ws, tmp_path, "nosy", "; ".join([probe(str(t)) for t in targets] + ["id -u"]))
    assert shown["executionState"] == "succeeded"
    out = output(ws, "nosy")
    assert LEAK not in out
    assert out.count("sealed") == len(targets)
    assert out.splitlines()[-1] != "0"  # never root
    log = output(ws, "nosy", "execution.log")
    assert "sandboxed (bubblewrap" in log and "as user " in log and "limits " in log


def test_an_installation_left_readable_is_still_hidden_from_jobs(ws: Bai, tmp_path: Path) -> None:
    """Its modes keep the job user out of the installation; were they opened by mistake, the
    sandbox still shows a job nothing of it."""
    assert run(ws, tmp_path, "first", "echo first")["executionState"] == "succeeded"
    (ws.home / "api.key").write_bytes(os.urandom(32))
    for path in [ws.home, *ws.home.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    other_run = next((ws.home / "runs").iterdir())
    targets = [ws.home / "api.key", ws.home / "config.json", other_run]
    shown = run(ws, tmp_path, "open", "; ".join(probe(str(t)) for t in targets))
    assert shown["executionState"] == "succeeded"
    out = output(ws, "open")
    assert LEAK not in out and out.count("sealed") == len(targets)


def stdout_of_a_runner(command: str, place: Path, env: dict[str, str], **plan_fields: Any) -> str:
    """The stdout of ``command`` run by a node runner (a real process, in ``env``) from a plan
    of its own, its logs on an embedded share under ``place``."""
    storage = place / "storage"
    (storage / "acct" / "file" / "logs").mkdir(parents=True, exist_ok=True)
    (place / "runs").mkdir(exist_ok=True)  # the runner hides its run directory's parent
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=place / "runs"))
    logs = MountSpec("logs", "local", "acct", "file", "logs", options={"root": str(storage)})
    job_plan(command, job_mounts=[logs], **plan_fields).write(run_dir / "plan.json")
    done = subprocess.run(
        [sys.executable, "-m", "openbai.runtime.runner", "--run-dir", str(run_dir)]
        + ["--node", "0", "--node-root", str(place / "nodes" / run_dir.name)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    (out,) = storage.glob("acct/file/logs/**/stdouterr/stdout.txt")
    text = out.read_text()
    shutil.rmtree(storage / "acct" / "file" / "logs" / "sub")
    return text


def test_a_runner_hides_the_installation_its_plan_names_whatever_its_environment(
    tmp_path: Path,
) -> None:
    """The plan names the installation to hide: a runner started without ``OPENBAI_HOME`` (a
    server on the default ``~/.openbai``, a Slurm node) hides it all the same."""
    installation = Path(tempfile.mkdtemp(prefix="openbai-home-", dir="/var/tmp"))
    try:
        installation.chmod(0o755)
        (installation / "api.key").write_text("the server's key")
        (installation / "api.key").chmod(0o644)
        env = {k: v for k, v in os.environ.items() if k != "OPENBAI_HOME"}
        command = f"cat {installation}/api.key || echo sealed"
        # what the plan alone keeps out
        assert stdout_of_a_runner(command, installation, env) == "the server's key"
        hidden = stdout_of_a_runner(command, installation, env, private=[str(installation)])
        assert hidden == "sealed\n"
    finally:
        shutil.rmtree(installation, ignore_errors=True)


def test_a_job_inherits_none_of_the_credentials_its_runner_was_started_with(
    tmp_path: Path,
) -> None:
    """A dispatcher started by ``bai`` from a user's shell has that shell's variables: the
    token of ``bai``, cloud keys, a database's address with its password stay with it; the
    job keeps where programs are, the locale, and what the installation names."""
    secrets = {
        "BAI_TOKEN": "bai-token-1",
        "AZURE_BATCHAI_STORAGE_KEY": "storage-key-2",
        "PGPASSWORD": "pg-password-3",
        "OPENBAI_DATABASE_URL": "postgresql://u:db-password-4@h/db",
        "AZURE_STORAGE_CONNECTION_STRING": "AccountName=a;AccountKey=account-key-5",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-6",
        "GITHUB_TOKEN": "github-token-7",
        "DATABASE_URL": "postgresql://app:app-password-8@db/app",
    }
    named = {"OPENBAI_JOB_ENV": "HF_HOME, CONDA_*", "HF_HOME": "/data/hf", "CONDA_PREFIX": "/c"}
    env = {**os.environ, **secrets, **named, "LANG": "C.UTF-8", "LC_TIME": "C"}
    shown = stdout_of_a_runner("env", tmp_path, env).splitlines()
    for kept in ("LANG=C.UTF-8", "LC_TIME=C", f"PATH={os.environ['PATH']}", "HF_HOME=/data/hf"):
        assert kept in shown
    assert "CONDA_PREFIX=/c" in shown
    for name, value in secrets.items():
        assert not any(value in line for line in shown), name
    assert not any(line.startswith("OPENBAI_JOB_ENV=") for line in shown)


def test_a_job_has_no_capabilities_and_cannot_gain_any(ws: Bai, tmp_path: Path) -> None:
    """No new privileges: a setuid program (``su``) runs as the job user, and the job holds
    no capability, not even in its bounding set."""
    command = (
        "grep -E '^(NoNewPrivs|CapEff|CapPrm|CapBnd|CapAmb):' /proc/self/status | tr -d '\\t';"
        " su -c 'echo became root' root </dev/null 2>/dev/null || echo su refused"
    )
    shown = run(ws, tmp_path, "caps", command)
    assert shown["executionState"] == "succeeded"
    assert output(ws, "caps").splitlines() == [
        "CapPrm:0000000000000000",
        "CapEff:0000000000000000",
        "CapBnd:0000000000000000",
        "CapAmb:0000000000000000",
        "NoNewPrivs:1",
        "su refused",
    ]


def test_a_job_sees_and_signals_only_its_own_processes(ws: Bai, tmp_path: Path) -> None:
    me = os.getpid()
    command = (
        "ps -e -o comm= | sort -u | tr '\\n' ' '; echo; "
        f"if kill -0 {me} 2>/dev/null; then echo {LEAK} kill; else echo sealed kill; fi"
    )
    shown = run(ws, tmp_path, "ps", command)
    assert shown["executionState"] == "succeeded"
    seen, signalled = output(ws, "ps").splitlines()
    assert set(seen.split()) <= {"bwrap", "bash", "ps", "sort", "tr"}
    assert signalled == "sealed kill"
    assert psutil.pid_exists(me)


def test_a_host_file_cannot_be_hard_linked_into_outputs(ws: Bai, tmp_path: Path) -> None:
    outputs = [{"id": "OUT", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs"}]
    command = (
        "ln /etc/passwd $AZ_BATCHAI_OUTPUT_OUT/passwd && echo LEAKED link || echo sealed link; "
        "echo mine > $AZ_BATCHAI_OUTPUT_OUT/result.txt"
    )
    shown = run(ws, tmp_path, "link", command, outputDirectories=outputs)
    assert shown["executionState"] == "succeeded"
    assert output(ws, "link").strip() == "sealed link"
    listed = ws.json("job", "file", "list", "-w", "ws", "-e", "exp", "-j", "link", "-d", "OUT")
    assert [f["name"] for f in listed] == ["result.txt"]
    # what the job wrote is the installation's to read, and a later job's to delete
    found = ws(
        "job",
        "file",
        "stream",
        "-w",
        "ws",
        "-e",
        "exp",
        "-j",
        "link",
        "-d",
        "OUT",
        "-f",
        "result.txt",
    )
    assert found.stdout == "mine\n"
    later = run(
        ws,
        tmp_path,
        "cleaner",
        "rm -r $AZ_BATCHAI_JOB_MOUNT_ROOT/logs/*/*/workspaces/ws/experiments/exp/jobs/link && echo removed",
    )
    assert later["executionState"] == "succeeded"
    assert output(ws, "cleaner").strip() == "removed"


def test_nothing_a_job_started_outlives_its_main_command(ws: Bai, tmp_path: Path) -> None:
    shown = run(ws, tmp_path, "ok", daemons(4711) + "sleep 0.2; " + counted("4711"))
    assert shown["executionState"] == "succeeded"
    assert shown["executionInfo"]["exitCode"] == 0
    assert output(ws, "ok") == "started 4\n"  # they ran, and are gone with the job
    assert_gone_within("sleep 4711", 2)


def counted(tag: str) -> str:
    """A shell line printing how many of the job's processes run ``sleep <tag>N``."""
    return f"echo started $(ps -e -o args= | grep -c '^sleep {tag}')"


def wait_running(bai: Bai, job: str, tag: str) -> None:
    deadline = time.monotonic() + 30
    while len(leftovers(tag)) < 4:
        assert time.monotonic() < deadline, f"{job}'s processes never started"
        time.sleep(0.05)


def test_nothing_outlives_a_terminated_job(ws: Bai, tmp_path: Path) -> None:
    ws("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "held",
       "-f", job_json(tmp_path, "held", daemons(4712) + "sleep 300"))  # fmt: skip
    wait_running(ws, "held", "sleep 4712")
    ws("job", "terminate", "-w", "ws", "-e", "exp", "-n", "held", "-y")
    shown = ws.wait("held")
    assert shown["executionInfo"]["errors"][0]["code"] == "JobTerminated"
    assert_gone_within("sleep 4712", 2)


def test_nothing_outlives_the_wall_clock(ws: Bai, tmp_path: Path) -> None:
    shown = run(ws, tmp_path, "slow", daemons(4713) + "sleep 0.2; " + counted("4713") + "; sleep 300",
                constraints={"maxWallClockTime": "PT3S"})  # fmt: skip
    assert shown["executionInfo"]["errors"][0]["code"] == "JobWallClockTimeExceeded"
    assert output(ws, "slow") == "started 4\n"
    assert_gone_within("sleep 4713", 2)


def test_nothing_outlives_a_lost_node(ws: Bai, tmp_path: Path) -> None:
    ws("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "lost",
       "-f", job_json(tmp_path, "lost", daemons(4714) + "sleep 300"))  # fmt: skip
    wait_running(ws, "lost", "sleep 4714")
    (runner_file,) = (ws.home / "runs").glob("*/node-0.runner")
    psutil.Process(json.loads(runner_file.read_text())[0]).kill()
    shown = ws.wait("lost")
    assert shown["executionInfo"]["errors"][0]["code"] == "NodeLost"
    assert_gone_within("sleep 4714", 2)


def test_a_terminate_its_runner_never_answered_ends_terminated(ws: Bai, tmp_path: Path) -> None:
    """A runner that does not answer a terminate (stuck: here stopped) is killed by the force
    that follows: the job ends terminated, as the user asked, not lost, and nothing it started
    outlives it."""
    ws("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "stuck",
       "-f", job_json(tmp_path, "stuck", daemons(4715) + "sleep 300"))  # fmt: skip
    wait_running(ws, "stuck", "sleep 4715")
    (runner_file,) = (ws.home / "runs").glob("*/node-0.runner")
    runner = psutil.Process(json.loads(runner_file.read_text())[0])
    runner.suspend()
    ws("job", "terminate", "-w", "ws", "-e", "exp", "-n", "stuck", "-y", "--no-wait")
    # the dispatcher's force comes after its stop request (a runner dead before that is
    # tests/services/test_dispatcher.py's case)
    stop = runner_file.parent / "stop.requested"
    wait_until(stop.exists, "the stop request")
    runner.kill()  # what the dispatcher does when its grace is over
    shown = ws.wait("stuck")
    assert [e["code"] for e in shown["executionInfo"]["errors"]] == ["JobTerminated"], ws.why(shown)
    assert_gone_within("sleep 4715", 2)


@pytest.fixture
def small(ws: Bai, tmp_path: Path) -> Bai:
    """Cluster ``small``: one node of 1 CPU, 200 MiB and 64 processes."""
    ws("cluster", "create", "-w", "ws", "-n", "small", "--nodes", "1", "--cpus-per-node", "1",
       "--memory-per-node", "200M", "--processes-per-node", "64")  # fmt: skip
    return ws


def test_a_job_past_its_memory_limit_fails_alone(small: Bai, tmp_path: Path) -> None:
    hog = "python3 -c 'b = bytearray(600 * 2**20); print(len(b))'"
    shown = run(small, tmp_path, "hog", hog, cluster="small")
    assert shown["executionState"] == "failed"
    error = shown["executionInfo"]["errors"][0]
    assert error["code"] == "JobMemoryLimitExceeded"
    assert "200 MiB" in error["message"]
    # the installation goes on serving, and a job on another slot runs
    assert run(small, tmp_path, "after", "echo fine")["executionState"] == "succeeded"


def test_a_fork_bomb_hits_its_process_limit(small: Bai, tmp_path: Path) -> None:
    shown = run(small, tmp_path, "bomb", FORK_BOMB, cluster="small")
    assert shown["executionState"] == "succeeded"
    stopped = int(output(small, "bomb").split()[-1])
    assert 0 < stopped < 64
    assert "reached the limit of 64 processes" in output(small, "bomb", "execution.log")
    assert_gone_within("time.sleep(60)", 2)


def test_a_slot_gets_no_more_cpu_than_its_share(ws: Bai, tmp_path: Path) -> None:
    """A quarter of a CPU: a job that spins for a second of wall time gets a quarter second."""
    ws("cluster", "create", "-w", "ws", "-n", "quarter", "--nodes", "1",
       "--cpus-per-node", "0.25")  # fmt: skip
    spin = (
        "python3 -c 'import os, time\nend = time.monotonic() + 1\n"
        "while time.monotonic() < end: pass\nt = os.times()\nprint(t.user + t.system)'"
    )
    shown = run(ws, tmp_path, "spin", spin, cluster="quarter")
    assert shown["executionState"] == "succeeded", ws.why(shown)
    assert 0 < float(output(ws, "spin")) < 0.4
    assert "limits 0.25 CPUs" in output(ws, "spin", "execution.log")


def test_the_job_user_is_the_one_configured(tmp_path: Path) -> None:
    place = Path(tempfile.mkdtemp(prefix="openbai-user-", dir="/var/tmp"))
    try:
        place.chmod(0o755)
        assert stdout_of_a_runner("id -un", place, dict(os.environ)) == "openbai-job\n"
        configured = {**os.environ, "OPENBAI_JOB_USER": "nobody"}
        assert stdout_of_a_runner("id -un", place, configured) == "nobody\n"
    finally:
        shutil.rmtree(place)


def test_the_clusters_setup_task_is_sealed_off_and_its_secrets_rest_sealed(
    ws: Bai, tmp_path: Path
) -> None:
    """The setup task runs when a node is allocated, before any job: as a job's tasks do."""
    (ws.home / "api.key").write_bytes(os.urandom(32))
    secret = "setup-" + os.urandom(8).hex()
    targets = [ws.home / "api.key", ws.home / "openbai.db", "/etc/shadow"]
    command = "; ".join([*(probe(str(t)) for t in targets), 'echo "$(id -u) ${#TOKEN}"'])
    cluster = {
        "properties": {
            "scaleSettings": {"manual": {"targetNodeCount": 1}},
            "nodeSetup": {
                "setupTask": {
                    "commandLine": command,
                    "stdOutErrPathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/logs",
                    "secrets": [{"name": "TOKEN", "value": secret}],
                },
                "mountVolumes": {
                    "azureFileShares": [
                        {
                            "azureFileUrl": "https://acct.file.core.windows.net/logs",
                            "relativeMountPath": "logs",
                        }
                    ]
                },
            },
        }
    }
    (tmp_path / "cluster.json").write_text(json.dumps(cluster))
    ws("cluster", "create", "-w", "ws", "-n", "prepared", "-f", str(tmp_path / "cluster.json"))
    assert (
        run(ws, tmp_path, "after", "echo ok", cluster="prepared")["executionState"] == "succeeded"
    )
    logs = ws.home / "storage" / "acct" / "file" / "logs"
    (printed,) = logs.rglob("stdout-prepared-0.txt")
    lines = printed.read_text().splitlines()
    assert lines[:-1] == [f"sealed {t}" for t in targets]
    uid, length = lines[-1].split()
    assert uid != "0" and length == str(len(secret))  # the job user's, with its secret
    for path in [*ws.home.glob("openbai.db*"), *ws.home.glob("runs/*/*")]:
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_the_jobs_loader_variables_reach_no_program_run_as_root(ws: Bai, tmp_path: Path) -> None:
    """A job's LD_* variables would make the dynamic loader of the programs that start its
    task as root (the shell that enters its groups, bubblewrap, setpriv) load its code, or
    write where it says: here the loader's debug output names a file of the host's /tmp,
    which the sandbox hides from the job. They reach the job's own command, and nothing
    written before the job user's took over."""
    out = tmp_path / "loader" / "debug"
    out.parent.mkdir()
    out.parent.chmod(0o1777)
    variables = [
        {"name": "LD_DEBUG", "value": "files"},
        {"name": "LD_DEBUG_OUTPUT", "value": str(out)},
    ]
    command = 'echo "$LD_DEBUG $LD_DEBUG_OUTPUT"'
    shown = run(ws, tmp_path, "loader", command, environmentVariables=variables)
    assert shown["executionState"] == "succeeded"
    assert output(ws, "loader").split() == ["files", str(out)]
    assert list(out.parent.iterdir()) == []


def test_every_task_runs_in_its_slots_groups(small: Bai, tmp_path: Path) -> None:
    """The job's processes are in the slot's group of each controller it is limited by
    (memory, process count, CPU): the limits above hold for all of them."""
    shown = run(small, tmp_path, "groups", "cat /proc/self/cgroup", cluster="small")
    assert shown["executionState"] == "succeeded"
    groups = {}
    for line in output(small, "groups").splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            groups[controller] = path.rsplit("/", 1)[-1]
    v2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()
    wanted = [""] if v2 else ["memory", "pids", "cpu"]
    slot = {c: groups.get(c, "") for c in wanted}
    assert all(name.startswith("openbai-") for name in slot.values()), slot
    assert len(set(slot.values())) == 1, slot


def test_cluster_show_says_whether_jobs_are_sandboxed(ws: Bai, tmp_path: Path) -> None:
    ws("cluster", "create", "-w", "ws", "-n", "open", "--nodes", "1", "--no-sandbox")
    assert ws.json("cluster", "show", "-w", "ws", "-n", "open")["openbai"]["sandbox"] is False
    assert ws.json("cluster", "show", "-w", "ws", "-n", "c1")["openbai"]["sandbox"] is True
    shown = run(ws, tmp_path, "unsealed", "id -u", cluster="open")
    assert output(ws, "unsealed").strip() == str(os.getuid())
    assert "not sandboxed" in output(ws, "unsealed", "execution.log")
    assert shown["executionState"] == "succeeded"


@pytest.fixture
def no_bwrap(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bwrap that can make no namespace, for the dispatcher started after this."""
    monkeypatch.setenv("OPENBAI_BWRAP", "/bin/false")


def test_without_a_sandbox_the_job_fails_clearly(no_bwrap: None, ws: Bai, tmp_path: Path) -> None:
    shown = run(ws, tmp_path, "nosandbox", "echo ran")
    assert shown["executionState"] == "failed"
    error = shown["executionInfo"]["errors"][0]
    assert error["code"] == "SandboxUnavailable"
    assert "--no-sandbox" in error["message"]


def test_secrets_stay_sealed_at_rest_and_go_with_the_job(ws: Bai, tmp_path: Path) -> None:
    secret = "hunter2-" + os.urandom(8).hex()
    shown = run(ws, tmp_path, "sec", 'echo "got ${#MYSECRET} chars"',
                secrets=[{"name": "MYSECRET", "value": secret}])  # fmt: skip
    assert shown["executionState"] == "succeeded"
    assert output(ws, "sec").strip() == f"got {len(secret)} chars"  # it reached the job
    assert ws.home.stat().st_mode & 0o777 == 0o700
    assert (ws.home / "openbai.db").stat().st_mode & 0o777 == 0o600
    for path in ws.home.glob("openbai.db*"):
        assert secret.encode() not in path.read_bytes(), path
    (run_dir,) = (ws.home / "runs").iterdir()
    assert not (run_dir / "plan.json").exists()  # the plan (secrets, keys) ended with the job
    ws("job", "delete", "-w", "ws", "-e", "exp", "-n", "sec", "-y")
    deadline = time.monotonic() + 30
    while run_dir.exists():
        assert time.monotonic() < deadline, "the deleted job's run directory is still there"
        time.sleep(0.1)


def test_no_secret_value_reaches_the_execution_log(ws: Bai, tmp_path: Path) -> None:
    """The log names every AZ_BATCHAI_* variable and each task's command line, expanded (a
    Python toolkit's commandLineArgs): a secret among them shows as ***."""
    token, key = "tok-" + os.urandom(8).hex(), "key-" + os.urandom(8).hex()
    logs = ws.home / "storage" / "acct" / "file" / "logs"
    (logs / "args.py").write_text("import sys\nprint('got', len(sys.argv[2]), 'chars')\n")
    props = logged_job("")
    del props["customToolkitSettings"]
    props["pyTorchSettings"] = {
        "pythonScriptFilePath": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs/args.py",
        "commandLineArgs": "--key $DB_KEY",
    }
    props["secrets"] = [
        {"name": "AZ_BATCHAI_MY_TOKEN", "value": token},
        {"name": "DB_KEY", "value": key},
    ]
    (tmp_path / "torch.json").write_text(json.dumps({"properties": props}))
    ws("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "torch",
       "-f", str(tmp_path / "torch.json"))  # fmt: skip
    assert ws.wait("torch")["executionState"] == "succeeded"
    assert output(ws, "torch", "stdout-0.txt") == f"got {len(key)} chars\n"  # it reached the job
    log = output(ws, "torch", "execution.log")
    assert "AZ_BATCHAI_MY_TOKEN=***" in log and "--key ***" in log
    assert token not in log and key not in log
    (node_log,) = (ws.home / "runs").glob("*/node-0.log")
    assert token not in node_log.read_text() and key not in node_log.read_text()


def test_a_job_cannot_reach_slurm_through_munge(tmp_path: Path) -> None:
    """munged's socket vouches for whoever connects: a job that reached it could submit work
    of its own to Slurm as the job user, outside openbai. The one Slurm's configuration names
    (here outside /tmp, which every sandbox replaces) is out of the job's sight."""
    import socket

    place = Path(tempfile.mkdtemp(prefix="openbai-munge-", dir="/var/tmp"))
    try:
        place.chmod(0o755)  # as /run is: the socket's own modes decide who may connect
        (place / "munge").mkdir()
        sock_path = place / "munge" / "munge.socket"
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(sock_path))
        sock_path.chmod(0o777)
        conf = place / "slurm.conf"
        conf.write_text(f"ClusterName=t\nAuthType=auth/munge\nAuthInfo=socket={sock_path}\n")
        command = f"test -S {sock_path} && echo reachable || echo hidden"
        env = {**os.environ, "SLURM_CONF": str(conf)}
        assert stdout_of_a_runner(command, place, env, sandbox=False) == "reachable\n"
        assert stdout_of_a_runner(command, place, env) == "hidden\n"
        server.close()
    finally:
        shutil.rmtree(place)


def test_paths_are_bound_by_their_real_path(tmp_path: Path) -> None:
    """A volume reached through links is bound where it really is (the kernel resolves it,
    as os.path.realpath would), and a path that does not exist is left out."""
    from openbai.runtime.sandbox import Identity, Sandbox, find_bwrap, real_path

    (tmp_path / "real" / "data").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    linked = tmp_path / "link" / "data"
    assert real_path(str(linked)) == os.path.realpath(linked) == str(tmp_path / "real" / "data")
    assert real_path(str(tmp_path / "missing")) is None

    sandbox = Sandbox(find_bwrap(), Identity.current(), writable=[linked, tmp_path / "missing"])
    args = sandbox.prefix()
    where = args.index("--bind")
    assert args[where + 1 : where + 3] == [str(tmp_path / "real" / "data")] * 2
    assert str(tmp_path / "missing") not in args


def test_a_read_only_path_inside_a_writable_one_stays_read_only(tmp_path: Path) -> None:
    """A volume mounted read-only under the job's writable mount root (a copy-mode volume)
    is bound read-only over it; the rest of the root stays writable."""
    from openbai.runtime.sandbox import Identity, Sandbox, find_bwrap

    root = tmp_path / "private" / "mounts"
    (root / "data").mkdir(parents=True)
    (root / "data" / "in.txt").write_text("dataset\n")
    sandbox = Sandbox(
        find_bwrap(),
        Identity.current(),
        hidden=[tmp_path / "private"],
        writable=[root],
        readable=[root / "data"],
    )
    tries = (
        f"cat {root}/data/in.txt; echo out > {root}/out.txt && echo wrote out; "
        f"echo x > {root}/data/new.txt 2>/dev/null || echo refused new"
    )
    done = subprocess.run(
        sandbox.argv(["sh", "-c", tries], Path("/")), capture_output=True, text=True
    )
    assert done.stdout == "dataset\nwrote out\nrefused new\n", done.stderr
    assert sorted(p.name for p in (root / "data").iterdir()) == ["in.txt"]


def test_a_narrowed_folder_of_proc_shows_the_entries_kept_alone() -> None:
    """How a task sees the GPU driver's list of boards (``/proc/driver/nvidia/gpus``): only
    its node's. That folder is not on this machine: the same on another folder of ``/proc``,
    over the sandbox's own procfs."""
    from openbai.runtime.gpu_devices import GpuView
    from openbai.runtime.sandbox import Identity, Sandbox, find_bwrap

    folder = Path("/proc/tty")
    assert len(list(folder.iterdir())) > 1
    sandbox = Sandbox(
        find_bwrap(), Identity.for_jobs(None), gpus=GpuView([], {folder: [folder / "drivers"]})
    )
    look = f"ls {folder}; head -1 {folder}/drivers; touch {folder}/new 2>/dev/null || echo no"
    done = subprocess.run(
        sandbox.argv(["sh", "-c", look], Path("/")), capture_output=True, text=True
    )
    host = (folder / "drivers").read_text().splitlines()[0]
    assert done.stdout == f"drivers\n{host}\nno\n", done.stderr


@pytest.fixture
def victim() -> Iterator[Path]:
    """A root-owned host file and folder outside every volume, which no job may write."""
    place = Path(tempfile.mkdtemp(prefix="openbai-victim-", dir="/var/tmp"))
    (place / "file").write_text("untouched\n")
    (place / "folder").mkdir()
    yield place
    shutil.rmtree(place, ignore_errors=True)


def test_the_runner_writes_through_no_link_a_job_prepared(
    ws: Bai, tmp_path: Path, victim: Path
) -> None:
    """Job preparation runs before the main command, as the job user, where the runner then
    opens the main command's stdout.txt as root: a link left there leads nowhere."""
    plant = f"ln -s {victim}/file $AZ_BATCHAI_STDOUTERR_DIR/stdout.txt"
    shown = run(ws, tmp_path, "planted", "echo written by the job",
                jobPreparation={"commandLine": plant})  # fmt: skip
    assert shown["executionState"] == "failed"
    error = shown["executionInfo"]["errors"][0]
    assert error["code"] == "OutputDirectoryError"
    assert "stdout.txt" in error["message"] and "symbolic link" in error["message"]
    assert (victim / "file").read_text() == "untouched\n"


def test_a_fifo_a_job_prepared_where_its_stdout_goes_is_refused_not_waited_on(
    ws: Bai, tmp_path: Path
) -> None:
    plant = "mkfifo $AZ_BATCHAI_STDOUTERR_DIR/stdout.txt"
    shown = run(ws, tmp_path, "fifo", "echo never", jobPreparation={"commandLine": plant},
                constraints={"maxWallClockTime": "PT2M"})  # fmt: skip
    assert shown["executionState"] == "failed"
    error = shown["executionInfo"]["errors"][0]
    assert error["code"] == "OutputDirectoryError"
    assert "stdout.txt: it is not a file (a FIFO, a device?)" in error["message"], error


def test_a_link_an_earlier_job_left_on_the_way_leads_nowhere(
    ws: Bai, tmp_path: Path, victim: Path
) -> None:
    """The folders of a job's outputs are made on its volume by the runner: a link an earlier
    job left where the next job's folders go is not followed."""
    jobs = "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs/*/*/workspaces/ws/experiments/exp/jobs"
    plant = f"cd {jobs} && ln -s {victim}/folder next && echo planted"
    assert run(ws, tmp_path, "first", plant)["executionState"] == "succeeded"
    assert output(ws, "first") == "planted\n"
    shown = run(ws, tmp_path, "next", "echo written by next")
    assert shown["executionState"] == "failed"
    assert shown["executionInfo"]["errors"][0]["code"] == "OutputDirectoryError"
    assert list((victim / "folder").iterdir()) == []


def test_an_output_folder_named_through_variables_stays_on_its_volume(
    ws: Bai, tmp_path: Path, victim: Path
) -> None:
    climb = "/.." * 20 + str(victim / "folder")
    shown = run(ws, tmp_path, "climber", "echo out > $AZ_BATCHAI_OUTPUT_OUT/x",
                inputDirectories=[{"id": "X", "path": climb}],
                outputDirectories=[{"id": "OUT",
                                    "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs/$AZ_BATCHAI_INPUT_X"}])  # fmt: skip
    assert shown["executionState"] == "failed"
    error = shown["executionInfo"]["errors"][0]
    assert (
        error["code"] == "OutputDirectoryError" and "none of the job's volumes" in error["message"]
    )
    assert list((victim / "folder").iterdir()) == []


def test_a_job_cannot_speak_nfs_to_a_file_server_it_did_not_mount(
    ws: Bai, tmp_path: Path, nfs_server: Nfs
) -> None:
    """The job shares the host's network, and NFS's AUTH_SYS believes any uid a client claims:
    the server takes only clients on a reserved port (root's, as openbai's mounts are)."""
    (nfs_server.data / "confidential.txt").write_text("payroll\n")
    code_root = Path(openbai.__file__).parents[1]
    lister = (
        f"import sys; sys.path.insert(0, {str(code_root)!r})\n"
        "from openbai.storage.nfs_client import NfsContext, Server\n"
        "for version in (3, 4):\n"
        f"    server = Server({nfs_server.host!r}, {nfs_server.export!r}, version,"
        f" {nfs_server.port}, {nfs_server.mount_port})\n"
        "    try:\n"
        "        names = [e.name for e in NfsContext(server, timeout_ms=5000).listdir('/')]\n"
        f"        print('{LEAK}' if 'confidential.txt' in names else 'empty', version)\n"
        "    except OSError as e:\n"
        "        print('sealed', version, e)\n"
    )
    (tmp_path / "lister.py").write_text(lister)
    # the same program as root, as a mount is made: the server answers
    shown = subprocess.run(
        [sys.executable, str(tmp_path / "lister.py")], capture_output=True, text=True, check=True
    )
    assert shown.stdout.count(LEAK) == 2, shown
    job = run(ws, tmp_path, "nfsprobe", f"{sys.executable} -c {shlex.quote(lister)}")
    assert job["executionState"] == "succeeded"
    out = output(ws, "nfsprobe")
    assert LEAK not in out
    assert out.count("sealed") == 2, out


def test_a_jobs_shared_memory_segments_end_with_it(ws: Bai, tmp_path: Path) -> None:
    """A System V segment outlives the process that made it, and every job runs as the one
    job user: each job has IPC of its own, gone with it."""
    key = 0x0BA1_5E55
    make = (
        "python3 -c 'import ctypes; libc = ctypes.CDLL(None, use_errno=True)\n"
        f"shm = libc.shmget({key}, 1 << 20, 0o1000 | 0o666)\n"
        'print("made" if shm >= 0 else "refused")\''
    )
    assert run(ws, tmp_path, "shm", make)["executionState"] == "succeeded"
    assert output(ws, "shm").strip() == "made"
    keys = [line.split()[0] for line in Path("/proc/sysvipc/shm").read_text().splitlines()[1:]]
    assert str(key) not in keys


def test_a_folder_swapped_for_a_link_is_made_no_job_users_through_it(
    tmp_path: Path, victim: Path
) -> None:
    """Embedded volumes are shared: a job may swap a folder of one for a link to a host
    folder between another job's mount and the moment root makes that folder the job
    user's (to let it write). Root then follows no link: not the folder's, not one on the
    way to it below the volume's own folder."""
    from openbai.errors import MountError
    from openbai.runtime.sandbox import Identity, Sandbox, find_bwrap

    volume = tmp_path / "volume"
    (volume / "a").mkdir(parents=True)
    (volume / "sub").symlink_to(victim, target_is_directory=True)
    (volume / "a" / "b").symlink_to(victim, target_is_directory=True)
    sandbox = Sandbox(find_bwrap(), Identity.for_jobs(), writable=[])
    assert sandbox.identity.switches
    with pytest.raises(OSError):
        sandbox.grant(volume / "sub")
    with pytest.raises(MountError) as swapped:
        sandbox.grant(volume / "a" / "b" / "folder", (volume, ("a", "b", "folder")))
    assert "a/b: not a folder (a link, or a file, was put there)" in swapped.value.message
    for path in (victim, victim / "file", victim / "folder"):
        assert path.stat().st_uid == 0, path  # still root's


def test_a_job_that_moves_its_mount_root_makes_root_remove_no_link_of_the_host(
    ws: Bai, tmp_path: Path, victim: Path
) -> None:
    """A job owns its temp folder: it may put a link to a host folder where its mount root
    was. Its volumes' links are removed where they were made, not through that path."""
    (victim / "logs").symlink_to("/etc/hostname")
    swap = f"cd $AZ_BATCHAI_JOB_TEMP && mv mounts mounts.moved && ln -s {victim} mounts"
    job = run(ws, tmp_path, "mover", swap, stdOutErrPathPrefix="$AZ_BATCHAI_JOB_MOUNT_ROOT/logs")
    assert job["executionState"] == "succeeded", job["executionInfo"]
    assert (victim / "logs").is_symlink()  # the host's link is there still


def test_a_volume_folder_swapped_for_a_link_between_two_tasks_binds_the_folder(
    tmp_path: Path, victim: Path
) -> None:
    """Another job writing the same volume may swap a folder a job mounted for a link to a
    folder the job must not reach (another account's volume), at any moment, the start of
    the job's next task included. The sandbox binds the folder from a descriptor reached
    through no link, not by its path, so the swap takes the job nowhere."""
    from openbai.runtime.sandbox import Identity, Sandbox, find_bwrap

    volume = tmp_path / "volume"
    (volume / "sub").mkdir(parents=True)
    (volume / "sub" / "file").write_text("the volume's\n")
    (victim / "file").write_text("another tenant's\n")
    folder = volume / "sub"
    sandbox = Sandbox(find_bwrap(), Identity.for_jobs(), writable=[folder])
    sandbox.anchors[folder] = (volume, ("sub",))
    argv = sandbox.argv(["cat", str(folder / "file")], tmp_path)
    fds = sandbox.take_fds()
    (volume / "sub").rename(volume / "moved")  # between the arguments and bwrap's start
    (volume / "sub").symlink_to(victim, target_is_directory=True)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, pass_fds=fds, timeout=30)
    finally:
        for fd in fds:
            os.close(fd)
    assert done.stdout == "the volume's\n", done.stderr


def test_links_put_where_the_runner_mounts_and_writes_lead_nowhere(
    tmp_path: Path, victim: Path
) -> None:
    """The job's temp folder stays root's until the runner has mounted the job's volumes in
    it and written the host file (by path): a setup task that runs as the job starts (on a
    node that has not run it yet), or a node exec at that moment, cannot put a link there for
    root to mount over or write through."""
    plant = (
        f"ln -s {victim}/folder $AZ_BATCHAI_JOB_TEMP/mounts;"
        f" ln -s {victim}/file $AZ_BATCHAI_JOB_TEMP/hostfile; true"
    )
    place = Path(tempfile.mkdtemp(prefix="openbai-place-", dir="/var/tmp"))
    try:
        place.chmod(0o755)
        storage = {"root": str(place / "storage")}
        afs = MountSpec("afs", "local", "acct", "file", "logs", options=storage)
        setup = SetupTaskSpec(plant, "$AZ_BATCHAI_MOUNT_ROOT/afs", "setup", {}, {})
        out = stdout_of_a_runner(
            "cat $AZ_BATCHAI_MPI_HOST_FILE", place, dict(os.environ),
            cluster_mounts=[afs], setup_task=setup,
        )  # fmt: skip
        assert out.startswith("10.0.0.4 slots=")
        assert (place / "storage" / "acct" / "file" / "logs" / "setup").is_dir()  # it ran
    finally:
        shutil.rmtree(place, ignore_errors=True)
    assert (victim / "file").read_text() == "untouched\n"
    assert list((victim / "folder").iterdir()) == []

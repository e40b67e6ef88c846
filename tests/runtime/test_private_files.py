"""Secrets at rest (issue 11, point 5): a job's plan (its secrets and its volumes' keys) ends
with the job however it ends, on the local executor and on Slurm, and every file the
installation keeps for itself is readable by its owner only."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest
from conftest import Bai
from job_files import with_logs_share
from polling import after_dispatcher_rounds, wait_until

from .hostile import SEALED, leftovers, outside_tmp
from .test_sandbox import job_json, run

if TYPE_CHECKING:
    from slurm_fixture import SlurmCluster

pytestmark = SEALED


@pytest.fixture
def bai_env(bai_env: dict[str, str]) -> Iterator[dict[str, str]]:
    yield from outside_tmp(bai_env)


@pytest.fixture
def ws(bai: Bai) -> Bai:
    return with_logs_share(bai)


def holding(root: Path, secret: str) -> list[Path]:
    """The files under ``root`` that hold ``secret`` in clear."""
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and secret.encode() in path.read_bytes()
    ]


def test_a_lost_runner_leaves_no_secret_of_its_job_on_disk(ws: Bai, tmp_path: Path) -> None:
    secret = "hunter2-" + os.urandom(8).hex()
    ws("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "lost",
       "-f", job_json(tmp_path, "lost", "sleep 4731",
                      secrets=[{"name": "MYSECRET", "value": secret}]))  # fmt: skip
    deadline = time.monotonic() + 30
    while not leftovers("sleep 4731"):
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    (run_dir,) = (ws.home / "runs").iterdir()
    assert holding(run_dir, secret) == [run_dir / "plan.json"]  # what its runner reads
    runner = json.loads((run_dir / "node-0.runner").read_text())[0]
    psutil.Process(runner).kill()  # the runner never reports, nor removes the plan
    shown = ws.wait("lost")
    assert shown["executionState"] == "failed"
    assert shown["executionInfo"]["errors"][0]["code"] == "NodeLost"
    # once the job shows ended, nothing of the installation holds its secret in clear
    assert not (run_dir / "plan.json").exists()
    assert holding(ws.home, secret) == []


@pytest.fixture
def on_slurm(slurm_env: SlurmCluster, ws: Bai) -> Bai:
    """``ws`` with the Slurm cluster ``slurm`` (partition ``debug``, nodes node1 and node2);
    ``slurm_env`` first: the dispatcher that the first command starts inherits it."""
    ws("cluster", "create", "-w", "ws", "-n", "slurm", "--executor", "slurm",
       "--partition", "debug", "--vm-size", "STANDARD_D1_V2")  # fmt: skip
    return ws


@pytest.mark.slurm
def test_a_slurm_job_terminated_while_pending_leaves_no_secret_on_disk(
    on_slurm: Bai, slurm_env: SlurmCluster, tmp_path: Path
) -> None:
    """Slurm never ran it, so no runner removed its plan: it goes when the job's end is
    recorded, not when the job is deleted."""
    secret = "hunter2-" + os.urandom(8).hex()
    with slurm_env.nodes_taken(120):
        on_slurm("job", "create", "-w", "ws", "-e", "exp", "-c", "slurm", "-n", "pending",
                 "-f", job_json(tmp_path, "pending", "echo ran",
                                secrets=[{"name": "MYSECRET", "value": secret}]))  # fmt: skip
        (plan,) = wait_until(
            lambda: list((on_slurm.home / "runs").glob("*/plan.json")), "plan submitted to Slurm"
        )
        after_dispatcher_rounds(on_slurm)  # its handle is stored: Slurm holds it pending
        shown = on_slurm.json("job", "show", "-w", "ws", "-e", "exp", "-n", "pending")
        assert shown["executionState"] == "queued"
        assert holding(plan.parent, secret) == [plan]
        on_slurm("job", "terminate", "-w", "ws", "-e", "exp", "-n", "pending", "-y")
        shown = on_slurm.wait("pending", timeout=60)
    assert shown["executionState"] == "failed"
    assert shown["executionInfo"]["errors"][0]["code"] == "JobTerminated"
    assert not plan.exists()
    assert holding(on_slurm.home, secret) == []


@pytest.mark.slurm
def test_a_job_slurm_refuses_leaves_no_secret_on_disk(on_slurm: Bai, tmp_path: Path) -> None:
    """sbatch refused it after its plan was written for the runners it never got."""
    secret = "hunter2-" + os.urandom(8).hex()
    on_slurm("cluster", "create", "-w", "ws", "-n", "nowhere", "--executor", "slurm",
             "--partition", "nope", "--vm-size", "STANDARD_D1_V2")  # fmt: skip
    shown = run(on_slurm, tmp_path, "refused", "echo ran", cluster="nowhere",
                secrets=[{"name": "MYSECRET", "value": secret}])  # fmt: skip
    assert shown["executionState"] == "failed"
    assert shown["executionInfo"]["errors"][0]["code"] == "SubmitError"
    (run_dir,) = (on_slurm.home / "runs").iterdir()
    assert not (run_dir / "plan.json").exists()
    assert holding(on_slurm.home, secret) == []


#: what under the home is not the installation's own: the volumes of embedded storage and of
#: file servers (their files keep the modes the jobs and users give them), and what the
#: sandbox shows a job (a node's jobs/ and mounts/ folders, a run's shared job temp)
NOT_THE_INSTALLATIONS = ("storage", "file-servers", "jobs", "mounts", "shared")


def installation_files(home: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(home):
        dirs[:] = [d for d in dirs if d not in NOT_THE_INSTALLATIONS]
        for name in files:
            path = Path(folder, name)
            if stat.S_ISREG(path.lstat().st_mode):
                yield path


def test_the_installations_files_are_its_own_alone(ws: Bai, tmp_path: Path) -> None:
    """$OPENBAI_HOME is 0700 and its files 0600: the dispatcher's log and lock, a run's
    files (its node logs, its task list) included, whatever the server's umask."""
    assert run(ws, tmp_path, "ran", "echo ran")["executionState"] == "succeeded"
    shown = run(ws, tmp_path, "broken", "exit 3")
    assert shown["executionState"] == "failed"
    assert (ws.home / "dispatcher.log").exists()
    assert ws.home.stat().st_mode & 0o777 == 0o700
    files = list(installation_files(ws.home))
    assert {"dispatcher.log", "dispatcher.lock", "node-0.log", "node-0.tasks"} <= {
        f.name for f in files
    }
    readable = [
        f"{path.relative_to(ws.home)} ({path.stat().st_mode & 0o777:o})"
        for path in files
        if path.stat().st_mode & 0o777 != 0o600
    ]
    assert not readable, "readable by others than the installation: " + ", ".join(readable)

"""Secrets at rest (issue 11, point 5), on the local executor: every file the installation
keeps for itself is readable by its owner only."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Bai
from job_files import with_logs_share

from .hostile import outside_tmp
from .test_sandbox import run

pytestmark = [
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed"),
    pytest.mark.skipif(os.getuid() != 0, reason="the job user is only switched under root"),
]


@pytest.fixture
def bai_env(bai_env: dict[str, str]) -> Iterator[dict[str, str]]:
    yield from outside_tmp(bai_env)


@pytest.fixture
def ws(bai: Bai) -> Bai:
    return with_logs_share(bai)


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

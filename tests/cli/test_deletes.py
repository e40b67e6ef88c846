"""Deletes are long-running: ``--no-wait`` returns at once, a resource being deleted shows
``deleting`` and takes no new children, and ``-y`` skips the question."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Bai

from openbai.installation import App
from openbai.services import deletions
from openbai.settings import Settings

from .conftest import job_file, submit


def gone(bai: Bai, *show: str, timeout: float = 60) -> None:
    """Wait until ``bai <show...>`` says not found (exit 3)."""
    deadline = time.monotonic() + timeout
    while bai(*show, expect=None).exit_code != 3:
        assert time.monotonic() < deadline, f"{show} still there"
        time.sleep(0.1)


@pytest.fixture
def service(bai: Bai) -> Iterator[App]:
    app = App.open(Settings.load(bai.env))
    yield app
    app.close()


def test_a_resource_being_deleted(ws: Bai, service: App, tmp_path: Path) -> None:
    submit(ws, tmp_path, "j", "sleep 60")
    # a delete begun and not finished (say, by a server that stopped meanwhile)
    deletions.begin(service, "job", "default", "ws", "j", experiment="exp")
    deletions.begin(service, "workspace", "default", "", "ws")

    job = ws.json("job", "show", "-w", "ws", "-e", "exp", "-n", "j")
    assert job["provisioningState"] == "deleting"
    listed = ws("job", "list", "-w", "ws", "-e", "exp", "-o", "table").stdout.split("\n")
    assert listed[0].split() == [
        "Name", "Cluster", "Cluster", "RG", "Cluster", "Workspace", "Tool", "Nodes", "State",
        "Exit", "code",
    ]  # fmt: skip
    assert listed[1].split()[:7] == ["j", "c1", "default", "ws", "custom", "1", "deleting"]
    assert ws.json("workspace", "show", "-n", "ws")["provisioningState"] == "deleting"
    refused = ws("experiment", "create", "-w", "ws", "-n", "new", expect=4)
    assert "workspace ws is being deleted" in refused.stderr
    ws("cluster", "create", "-w", "ws", "-n", "c2", expect=4)
    ws(
        "job",
        "create",
        "-w",
        "ws",
        "-e",
        "exp",
        "-c",
        "c1",
        "-n",
        "k",
        "-f",
        job_file(tmp_path, "true"),
        expect=4,
    )

    ws("workspace", "delete", "-n", "ws", "-y")  # finishes what was begun
    ws("workspace", "show", "-n", "ws", expect=3)
    ws("workspace", "create", "-n", "ws")  # the name is free again


def test_no_wait_returns_before_the_delete_is_done(ws: Bai, tmp_path: Path) -> None:
    submit(ws, tmp_path, "j", "sleep 60")
    ws("job", "delete", "-w", "ws", "-e", "exp", "-n", "j", "-y", "--no-wait")
    gone(ws, "job", "show", "-w", "ws", "-e", "exp", "-n", "j")
    ws("experiment", "delete", "-w", "ws", "-n", "exp", "-y", "--no-wait")
    gone(ws, "experiment", "show", "-w", "ws", "-n", "exp")
    ws("cluster", "delete", "-w", "ws", "-n", "c1", "-y", "--no-wait")
    gone(ws, "cluster", "show", "-w", "ws", "-n", "c1")
    ws("workspace", "delete", "-n", "ws", "-y", "--no-wait")
    gone(ws, "workspace", "show", "-n", "ws")


def test_delete_waits_for_a_running_job_to_stop(ws: Bai, tmp_path: Path) -> None:
    submit(ws, tmp_path, "j", "sleep 60")
    deadline = time.monotonic() + 60
    while ws.json("job", "show", "-w", "ws", "-e", "exp", "-n", "j")["executionState"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    busy = ws("cluster", "delete", "-w", "ws", "-n", "c1", "-y", expect=4)
    assert "has 1 queued or running job(s)" in busy.stderr
    ws("experiment", "delete", "-w", "ws", "-n", "exp", input="n\n", expect=1)  # not confirmed
    ws("experiment", "delete", "-w", "ws", "-n", "exp", "-y")
    ws("experiment", "show", "-w", "ws", "-n", "exp", expect=3)
    ws("cluster", "delete", "-w", "ws", "-n", "c1", "-y")  # its job has stopped
    assert ws.json("cluster", "list", "-w", "ws") == []


def test_a_workspace_whose_cluster_runs_another_workspaces_job_is_not_deleted(
    ws: Bai, tmp_path: Path
) -> None:
    ws("workspace", "create", "-n", "w3")
    ws("cluster", "create", "-w", "w3", "-n", "c3", "--nodes", "1")
    c3 = ws.json("cluster", "show", "-w", "w3", "-n", "c3")["id"]
    submit(ws, tmp_path, "j", "sleep 60", cluster=c3)  # ws's job on w3's cluster, as Batch AI let
    busy = ws("workspace", "delete", "-n", "w3", "-y", expect=4)
    assert "cluster c3 of workspace w3 has 1 queued or running job(s) of other workspaces" in (
        busy.stderr
    )
    assert ws.json("workspace", "show", "-n", "w3")["provisioningState"] == "succeeded"
    assert ws.json("job", "show", "-w", "ws", "-e", "exp", "-n", "j")["executionState"] in (
        "queued",
        "running",
    )
    ws("job", "terminate", "-w", "ws", "-e", "exp", "-n", "j", "-y")
    ws("job", "wait", "-w", "ws", "-e", "exp", "-n", "j", expect=None)
    ws("workspace", "delete", "-n", "w3", "-y")  # nothing of another workspace's runs there now
    ws("workspace", "show", "-n", "w3", expect=3)


def test_a_workspace_being_deleted_takes_no_job_on_its_clusters(
    ws: Bai, service: App, tmp_path: Path
) -> None:
    ws("workspace", "create", "-n", "w3")
    ws("cluster", "create", "-w", "w3", "-n", "c3", "--nodes", "1")
    c3 = ws.json("cluster", "show", "-w", "w3", "-n", "c3")["id"]
    deletions.begin(service, "workspace", "default", "", "w3")  # begun, not finished
    refused = ws("job", "create", "-w", "ws", "-e", "exp", "-c", c3, "-n", "k",
                 "-f", job_file(tmp_path, "true"), expect=4)  # fmt: skip
    assert "workspace w3 is being deleted" in refused.stderr

"""The dispatcher, driven round by round in this process: which queued jobs a round starts, on
which nodes, and how a dispatcher adopts the jobs of one that died. The jobs run for real on
a local 4-node cluster (node runners forked by the fork server)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from polling import wait_until
from sqlalchemy import null, select, update

from openbai.installation import App
from openbai.scheduling.dispatcher import Dispatcher
from openbai.services import accounts, clusters, jobs, workspaces
from openbai.storage.base import VolumeKind
from openbai.store.models import Job


@pytest.fixture
def local4(app: App) -> Iterator[App]:
    """``app`` with workspace ws, experiment exp and a 4-node local cluster c4; nothing
    dispatches unless the test runs a round."""
    app.on_change = lambda: None
    workspaces.create_workspace(app, "default", "ws")
    workspaces.create_experiment(app, "default", "ws", "exp")
    accounts.create_account(app, "acct")
    accounts.create_volume(app, "acct", VolumeKind.FILE, "logs")
    clusters.create_cluster(
        app,
        "default",
        "ws",
        "c4",
        {"properties": {"scaleSettings": {"manual": {"targetNodeCount": 4}}}},
    )
    yield app
    with app.db.reading() as s:
        left = list(s.scalars(select(Job.id)))
    jobs.stop_jobs(app, left, timeout=10)


def queue(app: App, name: str, command: str, *, nodes: int = 1, priority: str = "normal") -> None:
    body = {
        "properties": {
            "nodeCount": nodes,
            "schedulingPriority": priority,
            "customToolkitSettings": {"commandLine": command},
            "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
            "mountVolumes": {
                "azureFileShares": [
                    {
                        "azureFileUrl": "https://acct.file.core.windows.net/logs",
                        "relativeMountPath": "logs",
                    }
                ]
            },
        }
    }
    jobs.create_job(app, "default", "ws", "exp", name, body, cluster="c4")


def states(app: App) -> dict[str, tuple[str, list[Any]]]:
    with app.db.reading() as s:
        return {
            name: (state, nodes)
            for name, state, nodes in s.execute(select(Job.name, Job.execution_state, Job.nodes))
        }


def run_until_ended(dispatcher: Dispatcher, app: App, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while any(state not in ("succeeded", "failed") for state, _ in states(app).values()):
        assert time.monotonic() < deadline, states(app)
        dispatcher.tick()
        time.sleep(0.02)


def test_one_round_fills_the_free_nodes_in_priority_order(local4: App, gates: Path) -> None:
    gate = gates / "gate"
    wait = f"while [ ! -e {gate} ]; do sleep 0.05; done"
    for name, priority in (
        ("low", "low"),
        ("n1", "normal"),
        ("n2", "normal"),
        ("n3", "normal"),
        ("high", "high"),
    ):
        queue(local4, name, wait, priority=priority)
    dispatcher = Dispatcher(local4)
    assert dispatcher.tick()
    after = states(local4)
    running = {name for name, (state, _) in after.items() if state == "running"}
    assert running == {"high", "n1", "n2", "n3"}
    assert after["low"] == ("queued", [])
    assert sorted(slot for name in running for slot in after[name][1]) == [0, 1, 2, 3]
    gate.touch()
    run_until_ended(dispatcher, local4)
    assert {state for state, _ in states(local4).values()} == {"succeeded"}


def test_a_job_waits_for_enough_free_nodes_while_smaller_ones_backfill(
    local4: App, gates: Path
) -> None:
    gate = gates / "gate"
    queue(local4, "blocker", f"while [ ! -e {gate} ]; do sleep 0.05; done")
    dispatcher = Dispatcher(local4)
    dispatcher.tick()
    queue(local4, "gang", "true", nodes=4, priority="high")
    queue(local4, "small", f"while [ ! -e {gate} ]; do sleep 0.05; done", nodes=2)
    dispatcher.tick()
    after = states(local4)
    assert after["gang"] == ("queued", [])
    assert after["small"][0] == "running"
    assert not set(after["small"][1]) & set(after["blocker"][1])
    gate.touch()
    run_until_ended(dispatcher, local4)
    final = states(local4)
    assert final["gang"] == ("succeeded", [0, 1, 2, 3])


def test_jobs_of_a_dispatcher_that_died_before_storing_their_handles_are_adopted(
    local4: App, gates: Path
) -> None:
    gate = gates / "gate"
    for name in ("a", "b", "c"):
        queue(local4, name, f"while [ ! -e {gate} ]; do sleep 0.05; done; echo {name}")
    Dispatcher(local4).tick()
    # as if the dispatcher had died after starting the runners, before storing the handles
    with local4.db.session() as s:
        s.execute(update(Job).values(executor_ref=null()))
    successor = Dispatcher(local4)
    deadline = time.monotonic() + 30
    while True:  # a runner is adopted once it has recorded itself in the run directory
        successor.tick()
        with local4.db.reading() as s:
            refs = list(s.scalars(select(Job.executor_ref)))
        if all(ref is not None for ref in refs):
            break
        assert time.monotonic() < deadline, refs
        time.sleep(0.02)
    assert all(len(ref["data"]["runners"]) == 1 for ref in refs)
    assert {state for state, _ in states(local4).values()} == {"running"}
    gate.touch()
    run_until_ended(successor, local4)
    assert {state for state, _ in states(local4).values()} == {"succeeded"}


def test_a_node_is_given_to_a_job_only_once_its_setup_run_has_ended(
    local4: App, gates: Path
) -> None:
    """The setup run writes its marker when the task ends, then unmounts and clears the
    slot's folders: a job started between the two would lose its own."""
    gate = gates / "gate"
    logs = {
        "azureFileShares": [
            {"azureFileUrl": "https://acct.file.core.windows.net/logs", "relativeMountPath": "logs"}
        ]
    }
    clusters.create_cluster(
        local4,
        "default",
        "ws",
        "prepared",
        {
            "properties": {
                "scaleSettings": {"manual": {"targetNodeCount": 1}},
                "nodeSetup": {
                    "setupTask": {
                        "commandLine": f"while [ ! -e {gate} ]; do sleep 0.05; done",
                        "stdOutErrPathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/logs",
                    },
                    "mountVolumes": logs,
                },
            }
        },
    )
    body = {
        "properties": {
            "nodeCount": 1,
            "customToolkitSettings": {"commandLine": "true"},
            "stdOutErrPathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/logs",
        }
    }
    jobs.create_job(local4, "default", "ws", "exp", "after-setup", body, cluster="prepared")
    dispatcher = Dispatcher(local4)
    deadline = time.monotonic() + 30
    while not (locks := list(local4.settings.nodes_root.rglob("setup/*.lock"))):
        assert time.monotonic() < deadline, "the setup run should have started"
        dispatcher.tick()
        time.sleep(0.02)
    # the moment between the marker and the run's end, held open: the task still runs
    locks[0].with_suffix(".done").touch()
    dispatcher.tick()
    assert states(local4)["after-setup"] == ("queued", [])
    gate.touch()
    run_until_ended(dispatcher, local4)
    assert states(local4)["after-setup"] == ("succeeded", [0])


def test_a_job_terminated_before_its_handle_is_stored_ends_terminated(local4: App) -> None:
    """A job shows running a round before the dispatcher stores its runner's handle, so a
    terminate in that round cannot reach the runner itself: the next round asks it to stop.
    A runner that died meanwhile ends the job terminated, as the user asked, not lost."""
    queue(local4, "short-lived", "sleep 300")
    dispatcher = Dispatcher(local4)
    dispatcher.tick()
    with local4.db.reading() as s:
        job_id, uid, ref = s.execute(select(Job.id, Job.uid, Job.executor_ref)).one()
    assert states(local4)["short-lived"][0] == "running"
    assert ref is None  # stored with the next round
    jobs.request_termination(local4, job_id)
    runner_file = local4.settings.runs_root / uid / "node-0.runner"
    wait_until(runner_file.exists, "the runner")
    runner = psutil.Process(json.loads(runner_file.read_text())[0])
    runner.kill()
    runner.wait(10)
    run_until_ended(dispatcher, local4)
    with local4.db.reading() as s:
        errors = s.scalar(select(Job.errors)) or []
    assert [e["code"] for e in errors] == ["JobTerminated"], errors

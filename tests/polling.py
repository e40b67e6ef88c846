"""Waiting for a condition with a deadline: what a test does instead of sleeping a fixed time
before an assert (too short on a loaded machine, wasted on an idle one)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from conftest import Bai

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], what: str, timeout: float = 30.0, interval: float = 0.05
) -> T:
    """Call ``condition`` until it returns something truthy and return that; past the deadline
    fail the test, naming ``what`` and the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout:g} s (last seen: {value!r})")
        time.sleep(interval)


def after_dispatcher_rounds(bai: Bai) -> None:
    """Return once the dispatcher has run whole rounds begun after this call: it started a job
    of its own (in workspace ``probe``, on a cluster of its own) and recorded its end. A test
    that asserts that something did *not* change calls this first, where it would otherwise
    sleep for "a few rounds"."""
    if bai("workspace", "show", "-n", "probe", expect=None).exit_code != 0:
        bai("workspace", "create", "-n", "probe")
        bai("experiment", "create", "-w", "probe", "-n", "exp")
        bai("cluster", "create", "-w", "probe", "-n", "own", "--nodes", "1")
        bai("storage", "account", "create", "-n", "probelogs")
        bai("storage", "share", "create", "--account", "probelogs", "-n", "logs")
    name = f"probe{time.monotonic_ns()}"
    job = bai.home / f"{name}.json"
    share = {
        "accountName": "probelogs",
        "azureFileUrl": "https://probelogs.file.core.windows.net/logs",
        "relativeMountPath": "logs",
    }
    props = {
        "nodeCount": 1,
        "customToolkitSettings": {"commandLine": "true"},
        "mountVolumes": {"azureFileShares": [share]},
        "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
    }
    job.write_text(json.dumps({"properties": props}))
    bai("job", "create", "-w", "probe", "-e", "exp", "-c", "own", "-n", name, "-f", str(job))
    assert bai.wait(name, workspace="probe")["executionState"] == "succeeded"


def wait_for_nodes(bai: Bai, cluster: str, workspace: str = "ws") -> dict[str, Any]:
    """``cluster show`` once the cluster has its nodes: they are allocated in the background
    (``allocationState`` resizing, then steady), as Batch AI's were."""
    return dict(
        wait_until(
            lambda: (
                (shown := bai.json("cluster", "show", "-w", workspace, "-n", cluster))[
                    "allocationState"
                ]
                == "steady"
                and shown
            ),
            f"cluster {cluster} to get its nodes",
            timeout=60,
        )
    )

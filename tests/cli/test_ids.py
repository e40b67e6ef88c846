"""``--ids``: a resource's ARM id (as show and list print it) in place of its name flags."""

from __future__ import annotations

from pathlib import Path

from conftest import Bai
from polling import wait_for_nodes

from .conftest import job_file


def test_commands_take_the_id_a_show_printed(ws: Bai, tmp_path: Path) -> None:
    cluster = wait_for_nodes(ws, "c1")["id"]
    assert ws.json("cluster", "show", "--ids", cluster)["name"] == "c1"
    assert len(ws.json("cluster", "node", "list", f"--ids={cluster}")) == 2
    resized = ws.json("cluster", "resize", "--ids", cluster, "-t", "3")
    assert resized["scaleSettings"]["manual"]["targetNodeCount"] == 3
    assert wait_for_nodes(ws, "c1")["currentNodeCount"] == 3

    ws("job", "create", "-w", "ws", "-e", "exp", "-c", cluster, "-n", "j",
       "-f", job_file(tmp_path, "echo by id"))  # fmt: skip
    job = ws.json("job", "show", "-w", "ws", "-e", "exp", "-n", "j")["id"]
    ws("job", "wait", "--ids", job)
    assert ws("job", "file", "stream", "--ids", job, "-f", "stdout.txt").stdout == "by id\n"
    assert "stdout.txt" in ws.json("job", "file", "list", "--ids", job, "--query", "[].name")
    ws("job", "delete", "--ids", job, "-y")
    ws("job", "show", "--ids", job, expect=3)

    workspace = ws.json("workspace", "show", "-n", "ws")["id"]
    experiment = ws.json("experiment", "show", "-w", "ws", "-n", "exp")["id"]
    assert ws.json("experiment", "show", "--ids", experiment)["name"] == "exp"
    ws("experiment", "delete", "--ids", experiment, "-y")
    ws("cluster", "delete", "--ids", cluster, "-y")
    ws("workspace", "delete", "--ids", workspace, "-y")
    assert ws.json("workspace", "list") == []


def test_ids_that_do_not_fit(ws: Bai) -> None:
    cluster = ws.json("cluster", "show", "-w", "ws", "-n", "c1")["id"]
    wrong_kind = ws("job", "show", "--ids", cluster, expect=2)
    assert (
        "expected /subscriptions/S/resourceGroups/G/providers/Microsoft.BatchAI/workspaces/W/experiments/E/jobs/J"
        in wrong_kind.stderr
    )
    both = ws("cluster", "show", "--ids", cluster, "-w", "ws", expect=2)
    assert "give --ids or -w, not both" in both.stderr
    assert (
        "give one id" in ws("cluster", "show", "--ids", cluster, "--ids", cluster, expect=2).stderr
    )
    ws("cluster", "show", "--ids", cluster.replace("/clusters/c1", "/clusters/nope"), expect=3)


def test_ids_compare_without_case_and_name_this_installations_subscription(
    ws: Bai, tmp_path: Path
) -> None:
    experiment = ws.json("experiment", "show", "-w", "ws", "-n", "exp")["id"]
    lower = experiment.replace("resourceGroups", "resourcegroups").replace(
        "Microsoft.BatchAI", "microsoft.batchai"
    )
    assert ws.json("experiment", "show", "--ids", lower)["name"] == "exp"
    subscription = experiment.split("/")[2]
    other = experiment.replace(subscription, "00000000-0000-0000-0000-000000000000")
    refused = ws("experiment", "delete", "--ids", other, "-y", expect=3)
    assert "is not this installation's" in refused.stderr
    assert ws.json("experiment", "show", "-w", "ws", "-n", "exp")["name"] == "exp"  # still there
    # a job's cluster by an id of another subscription names no cluster here
    cluster = ws.json("cluster", "show", "-w", "ws", "-n", "c1")["id"]
    elsewhere = cluster.replace(subscription, "00000000-0000-0000-0000-000000000000")
    refused = ws("job", "create", "-w", "ws", "-e", "exp", "-c", elsewhere, "-n", "j",
                 "-f", job_file(tmp_path, "true"), expect=2)  # fmt: skip
    assert "not this installation's" in refused.stderr

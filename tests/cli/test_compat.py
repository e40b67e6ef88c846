"""What old ``az batchai`` scripts rely on: the pre-2.0.38 command and option names, az's
table layouts, and ``-y`` on what destroys."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Bai
from polling import wait_until

from .conftest import job_file


def test_old_command_names_work_and_stay_out_of_help(ws: Bai, tmp_path: Path) -> None:
    ws("job", "create", "-w", "ws", "-e", "exp", "-r", "c1", "-n", "j",
       "--config", job_file(tmp_path, "echo hello"))  # fmt: skip
    assert ws.wait("j")["executionState"] == "succeeded"
    old = ws.json("job", "list-files", "-w", "ws", "-e", "exp", "-n", "j")
    new = ws.json("job", "file", "list", "-w", "ws", "-e", "exp", "-j", "j")
    assert [f["name"] for f in old] == [f["name"] for f in new]
    assert "stdout.txt" in [f["name"] for f in new]
    streamed = ws("job", "stream-file", "-w", "ws", "-e", "exp", "-n", "j", "-f", "stdout.txt")
    assert streamed.stdout == "hello\n"
    assert ws.json("job", "list-nodes", "-w", "ws", "-e", "exp", "-n", "j") == []
    assert ws.json("list-usages", "-l", "local")[0]["name"]["value"] == "Clusters"

    for group in ("job", "cluster"):
        shown = ws(group, "--help").stdout
        assert "list-files" not in shown and "list-nodes" not in shown
        assert " node " in shown.replace("\n", " ") and " file " in shown.replace("\n", " ")


def test_an_old_job_create_line_with_short_flags(ws: Bai, tmp_path: Path) -> None:
    # az before 2.0.38: -r is the cluster and -c the job file (since then -c is the cluster)
    ws("job", "create", "-w", "ws", "-e", "exp", "-n", "j", "-r", "c1",
       "-c", job_file(tmp_path, "echo old"))  # fmt: skip
    assert ws.wait("j")["executionState"] == "succeeded"
    assert (
        ws("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "j", "-f", "stdout.txt").stdout
        == "old\n"
    )
    mixed = ws("job", "create", "-w", "ws", "-e", "exp", "-n", "k", "-r", "c1", "-c", "a.json",
               "-f", "b.json", expect=2)  # fmt: skip
    assert "-c is the job file when -r/--cluster-name is given" in mixed.stderr
    missing = ws("job", "create", "-w", "ws", "-e", "exp", "-n", "k", "-c", "c1", expect=2)
    assert "Missing option '-f' / '--config-file'" in missing.stderr


def test_old_option_names_of_cluster_create(ws: Bai, tmp_path: Path) -> None:
    config = tmp_path / "cluster.json"
    config.write_text(json.dumps({"properties": {"vmSize": "STANDARD_NC12"}}))
    ws("storage", "container", "create", "--account", "acct", "-n", "data")
    cluster = ws.json(
        "cluster", "create", "-w", "ws", "-n", "old", "-c", str(config),
        "--storage-account-name", "acct", "--storage-account-key", "k3y",
        "--container-name", "data", "--container-mount-path", "data",
        "-i", "UbuntuLTS", "--custom-image", "/subscriptions/s/images/mine", "--subnet", "/subnets/x",
    )  # fmt: skip
    assert cluster["vmSize"] == "STANDARD_NC12"
    blob = cluster["nodeSetup"]["mountVolumes"]["azureBlobFileSystems"][0]
    assert (blob["containerName"], blob["relativeMountPath"]) == ("data", "data")
    assert "k3y" not in json.dumps(cluster)
    image = cluster["virtualMachineConfiguration"]["imageReference"]
    assert image["virtualMachineImageId"] == "/subscriptions/s/images/mine"
    assert cluster["subnet"] == {"id": "/subnets/x"}
    lonely = ws("cluster", "create", "-w", "ws", "-n", "x", "--custom-image", "/i", expect=2)
    assert "--custom-image needs -i" in lonely.stderr


def test_az_table_layouts(ws: Bai) -> None:
    wide = Bai(ws.home, {**ws.env, "COLUMNS": "200"})  # a terminal the whole table fits in

    def header(*argv: str) -> list[str]:
        return wide(*argv, "-o", "table").stdout.split("\n")[0].split()

    assert header("cluster", "list", "-w", "ws") == [
        "Name", "Resource", "Group", "Workspace", "VM", "Size", "State", "Idle", "Running",
        "Preparing", "Leaving", "GPUs", "Unusable",
    ]  # fmt: skip
    # the cluster gets its nodes in the background (resizing, then steady)
    wait_until(
        lambda: ws.json("cluster", "show", "-w", "ws", "-n", "c1")["allocationState"] == "steady",
        "cluster c1 to get its nodes",
    )
    assert wide("cluster", "show", "-w", "ws", "-n", "c1", "-o", "table").stdout.split("\n")[
        1
    ].split() == ["c1", "default", "ws", "STANDARD_NC6", "steady", "2", "0", "0", "0", "0", "0"]
    assert header("experiment", "list", "-w", "ws") == [
        "Name", "Resource", "Group", "Workspace", "State",
    ]  # fmt: skip
    assert header("workspace", "list") == ["Name", "Resource", "Group", "Location", "State"]
    assert header("job", "list", "-w", "ws", "-e", "exp") == [
        "Name", "Cluster", "Cluster", "RG", "Cluster", "Workspace", "Tool", "Nodes", "State",
        "Exit", "code",
    ]  # fmt: skip


def test_destructive_commands_ask_unless_yes(ws: Bai) -> None:
    for argv in (
        ("workspace", "delete", "-n", "ws"),
        ("experiment", "delete", "-w", "ws", "-n", "exp"),
        ("cluster", "delete", "-w", "ws", "-n", "c1"),
    ):
        asked = ws(*argv, input="n\n", expect=1)
        assert "[y/N]" in asked.stderr
    ws("cluster", "show", "-w", "ws", "-n", "c1")
    ws("cluster", "delete", "-w", "ws", "-n", "c1", input="y\n")
    ws("cluster", "show", "-w", "ws", "-n", "c1", expect=3)


def test_commands_that_print_nothing_take_o_none_as_scripts_pass_it(
    ws: Bai, tmp_path: Path
) -> None:
    job = ("-w", "ws", "-e", "exp", "-n", "j")
    ws("job", "create", *job, "-c", "c1", "-f", job_file(tmp_path, "echo hi"), "-o", "none")
    assert ws("job", "wait", *job, "-o", "none").stdout == ""
    for argv in (
        ("job", "terminate", *job, "-y"),
        ("job", "delete", *job, "-y"),
        ("cluster", "delete", "-w", "ws", "-n", "c1", "-y"),
        ("experiment", "delete", "-w", "ws", "-n", "exp", "-y", "--no-wait"),
        ("storage", "share", "delete", "--account", "acct", "-n", "logs", "-y"),
        ("storage", "account", "delete", "-n", "acct", "-y"),
        ("workspace", "delete", "-n", "ws", "-y"),
    ):
        assert ws(*argv, "-o", "none", "--query", "name").stdout == ""
    ws("workspace", "show", "-n", "ws", expect=3)


def test_a_short_option_written_with_equals_reads_as_az_reads_it(ws: Bai, tmp_path: Path) -> None:
    """azure-cli's own scenario test writes ``-d=OUTPUT``; argparse reads the value OUTPUT."""
    job = tmp_path / "job.json"
    data = json.loads(
        Path(job_file(tmp_path, "echo out > $AZ_BATCHAI_OUTPUT_OUTPUT/r.txt")).read_text()
    )
    data["properties"]["outputDirectories"] = [
        {"id": "OUTPUT", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs"}
    ]
    job.write_text(json.dumps(data))
    ws("job", "create", "-w=ws", "-e=exp", "-c=c1", "-n=j", "-f", str(job))
    assert ws.wait("j")["executionState"] == "succeeded"
    listed = ws.json("job", "file", "list", "-w", "ws", "-e", "exp", "-j", "j", "-d=OUTPUT")
    assert [f["name"] for f in listed] == ["r.txt"]
    # a value that merely contains '=' and a '--query' value stay as written
    query = ws("job", "list", "-w", "ws", "-e", "exp", "--query", "[?name=='j'].name", "-o", "tsv")
    assert query.stdout == "j\n"


def test_tsv_prints_list_rows_as_columns_like_az(ws: Bai) -> None:
    out = ws("experiment", "list", "-w", "ws", "--query", "[].[name, resourceGroup]", "-o", "tsv")
    assert out.stdout == "exp\tdefault\n"
    # inside a row, a list is its length and an object is empty, as az prints them
    out = ws(
        "experiment", "list", "-w", "ws", "--query", "[].[name, `[1, 2]`, {a: name}]", "-o", "tsv"
    )
    assert out.stdout == "exp\t2\t\n"

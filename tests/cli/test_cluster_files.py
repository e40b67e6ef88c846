"""``bai cluster file list``: the setup task's output files, read through storage."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from conftest import Bai
from polling import wait_until


def fetch(url: str) -> bytes:
    """A download link: a signed http link of the server, or a file URL in process."""
    if url.startswith("file://"):
        return Path(unquote(urlsplit(url).path)).read_bytes()
    return httpx.get(url).content


def _setup_cluster(bai: Bai, name: str, output: str) -> None:
    bai(
        "cluster", "create", "-w", "ws", "-n", name, "--nodes", "1",
        "--storage-account-name", "acct", "--afs-name", "logs",
        "--setup-task", "echo set up on $AZ_BATCH_NODE_ID; echo warning >&2",
        "--setup-task-output", output,
    )  # fmt: skip


def without_link(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != "download_url"}


def test_setup_task_files_after_a_node_ran_it(ws: Bai) -> None:
    _setup_cluster(ws, "s", "$AZ_BATCHAI_MOUNT_ROOT/afs/setup")
    cluster = ws.json("cluster", "show", "-w", "ws", "-n", "s")
    suffix = cluster["nodeSetup"]["setupTask"]["stdOutErrPathSuffix"]
    assert suffix.endswith(f"/default/workspaces/ws/clusters/s/{suffix.rsplit('/', 1)[1]}")

    # the node runs the setup task when it is allocated, before any job
    wait_until(
        lambda: (
            ws.json("cluster", "show", "-w", "ws", "-n", "s")["nodeStateCounts"]["idleNodeCount"]
            == 1
        ),
        "idle node after its setup task",
        timeout=90,
    )
    files = ws.json("cluster", "file", "list", "-w", "ws", "-c", "s")
    assert [(f["name"], f["is_directory"]) for f in files] == [
        ("stderr-s-0.txt", False),
        ("stdout-s-0.txt", False),
    ]
    assert files[1]["size"] == len("set up on s-0\n")
    assert fetch(files[1]["download_url"]) == b"set up on s-0\n"
    table = ws("cluster", "file", "list", "-w", "ws", "-c", "s", "-o", "table").stdout
    assert table.split("\n")[0].split() == ["Name", "Is", "directory", "Size"]
    assert table.split("\n")[2].split() == ["stdout-s-0.txt", "no", "14"]
    # the pre-2.0.38 name, and a folder below the output that does not exist
    # the old name lists the same files (links are signed anew, their expiry may differ)
    old = ws.json("cluster", "list-files", "-w", "ws", "-n", "s")
    assert [without_link(f) for f in old] == [without_link(f) for f in files]
    assert ws.json("cluster", "file", "list", "-w", "ws", "-c", "s", "-p", "sub") == []
    escape = ws("cluster", "file", "list", "-w", "ws", "-c", "s", "-p", "../..", expect=2)
    assert "path" in escape.stderr


def test_clusters_without_listable_setup_output(ws: Bai) -> None:
    assert ws.json("cluster", "file", "list", "-w", "ws", "-c", "c1") == []  # no setup task
    # a setup task writing where no volume of the cluster is: refused at create, as for jobs
    for output in (
        "/tmp/setup-logs",
        "$AZ_BATCHAI_MOUNT_ROOT/elsewhere",
        "$AZ_BATCHAI_JOB_MOUNT_ROOT/afs",
    ):
        refused = ws(
            "cluster", "create", "-w", "ws", "-n", "elsewhere", "--nodes", "1",
            "--storage-account-name", "acct", "--afs-name", "logs",
            "--setup-task", "true", "--setup-task-output", output, expect=2,
        )  # fmt: skip
        field = "properties.nodeSetup.setupTask.stdOutErrPathPrefix"
        assert f"{field}: {output} is on no volume" in refused.stderr
        assert "$AZ_BATCHAI_MOUNT_ROOT/afs" in refused.stderr
    assert [c["name"] for c in ws.json("cluster", "list", "-w", "ws")] == ["c1"]

"""azure-cli's batchai test_batchai_scenario.py, its flow through ``bai`` (az's commands and
flags): a workspace, a cluster with auto-storage, a custom job writing to an output
directory, the job's files, deletion."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Bai
from polling import wait_until


def test_batchai_scenario(bai: Bai, tmp_path: Path) -> None:
    bai("workspace", "create", "-n", "ws", "-l", "local")
    bai("experiment", "create", "-w", "ws", "-n", "exp")
    bai("cluster", "create", "-w", "ws", "-n", "cluster", "--nodes", "1", "--use-auto-storage")
    cluster = wait_until(
        lambda: (
            (c := bai.json("cluster", "show", "-w", "ws", "-n", "cluster"))
            and c["nodeStateCounts"]["idleNodeCount"] == 1
            and c
        ),
        "an idle node",
        timeout=90,
    )
    assert cluster["vmSize"] == "STANDARD_NC6"  # az's default VM size
    nodes = bai.json("cluster", "node", "list", "-w", "ws", "-c", "cluster")
    assert [n["nodeId"] for n in nodes] == ["cluster-0"]
    job = tmp_path / "job.json"
    job.write_text(
        json.dumps(
            {
                "properties": {
                    "nodeCount": 1,
                    "stdOutErrPathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/autoafs",
                    "outputDirectories": [
                        {"id": "OUTPUT", "pathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/autoafs"}
                    ],
                    "customToolkitSettings": {
                        "commandLine": "echo hi | tee $AZ_BATCHAI_OUTPUT_OUTPUT/result.txt"
                    },
                }
            }
        )
    )
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", "cluster", "-n", "job", "-f", str(job))
    bai("job", "wait", "-w", "ws", "-e", "exp", "-n", "job")
    assert bai.json("job", "show", "-w", "ws", "-e", "exp", "-n", "job")["executionState"] == (
        "succeeded"
    )
    stdouterr = bai.json("job", "file", "list", "-w", "ws", "-e", "exp", "-j", "job")
    # the golden example's listing: exactly these three, stdout "hi\n"
    sizes = {f["name"]: f["contentLength"] for f in stdouterr}
    assert sizes["stdout.txt"] == 3 and sizes["stderr.txt"] == 0
    assert sorted(f["name"] for f in stdouterr) == ["execution.log", "stderr.txt", "stdout.txt"]
    outputs = bai.json("job", "file", "list", "-w", "ws", "-e", "exp", "-j", "job", "-d", "OUTPUT")
    assert [f["name"] for f in outputs] == ["result.txt"]
    bai("job", "delete", "-w", "ws", "-e", "exp", "-n", "job", "-y")
    assert bai.json("job", "list", "-w", "ws", "-e", "exp") == []
    bai("cluster", "delete", "-w", "ws", "-n", "cluster", "-y")
    assert bai.json("cluster", "list", "-w", "ws") == []

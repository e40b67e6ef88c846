"""``bai cluster node list`` and ``bai job node list``: the nodes, as remote-login info."""

from __future__ import annotations

import time
from pathlib import Path

from conftest import Bai
from polling import wait_for_nodes

from .conftest import submit


def test_cluster_nodes(ws: Bai) -> None:
    wait_for_nodes(ws, "c1")
    nodes = ws.json("cluster", "node", "list", "-w", "ws", "-c", "c1")
    assert nodes == [
        {"nodeId": "c1-0", "ipAddress": "127.0.0.1", "port": 22, "gpus": []},
        {"nodeId": "c1-1", "ipAddress": "127.0.0.1", "port": 22, "gpus": []},
    ]
    table = ws("cluster", "node", "list", "-w", "ws", "-c", "c1", "-o", "table").stdout
    assert table.split("\n")[0].split() == ["ID", "IP", "SSH", "Port", "GPUs"]
    assert table.split("\n")[1].split() == ["c1-0", "127.0.0.1", "22"]
    # the pre-2.0.38 name, with -n for the cluster
    assert ws.json("cluster", "list-nodes", "-w", "ws", "-n", "c1") == nodes
    missing = ws("cluster", "node", "list", "-w", "ws", "-c", "nope", expect=3)
    assert "cluster nope is not found" in missing.stderr


def test_job_nodes_while_it_runs(ws: Bai, tmp_path: Path, gates: Path) -> None:
    trigger = gates / "go"
    command = f"while [ ! -e {trigger} ]; do sleep 0.1; done"
    submit(ws, tmp_path, "j", command)
    deadline = time.monotonic() + 60
    while ws.json("job", "show", "-w", "ws", "-e", "exp", "-n", "j")["executionState"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    nodes = ws.json("job", "node", "list", "-w", "ws", "-e", "exp", "-j", "j")
    assert len(nodes) == 1 and nodes[0]["nodeId"] in ("c1-0", "c1-1")
    assert ws.json("job", "list-nodes", "-w", "ws", "-e", "exp", "-n", "j") == nodes
    trigger.touch()
    ws.wait("j")
    assert ws.json("job", "node", "list", "-w", "ws", "-e", "exp", "-j", "j") == []

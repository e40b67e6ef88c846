"""``bai usage show -l``: clusters and their nodes in a location, against Batch AI's limits."""

from __future__ import annotations

from conftest import Bai


def test_usage_counts_clusters_and_nodes(ws: Bai) -> None:
    ws("cluster", "create", "-w", "ws", "-n", "c2", "--nodes", "3")
    usages = ws.json("usage", "show", "-l", "local")
    assert [(u["name"]["value"], u["currentValue"], u["limit"]) for u in usages] == [
        ("Clusters", 2, 200),
        ("Cluster Nodes", 5, 2000),
    ]
    table = ws("usage", "show", "-l", "local", "-o", "table").stdout.split("\n")
    assert table[0].split() == ["Value", "Usage", "Limit"]
    assert table[2].split() == ["Cluster", "Nodes", "5", "2000"]
    assert ws.json("usage", "show", "-l", "elsewhere", "--query", "[].currentValue") == [0, 0]
    assert "Missing option '-l'" in ws("usage", "show", expect=2).stderr

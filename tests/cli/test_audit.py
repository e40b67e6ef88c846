"""The audit log through the real CLI and a real ``bai serve``: tokens with roles and
workspaces made by ``bai token create``, refused calls exit 5, and ``bai audit list`` shows
each mutating call (embedded, reading the store, and through the server for owners), with
filters; the server writes each entry to its log as a JSON line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from api.support import Server, start_server
from conftest import Bai
from polling import wait_until


@pytest.fixture
def server(bai: Bai) -> Iterator[Server]:
    running = start_server(bai.home, bai.env)
    yield running
    running.stop()


def through(bai: Bai, server: Server, token: str) -> Bai:
    return Bai(bai.home, {**bai.env, "BAI_SERVER": server.url, "BAI_TOKEN": token})


def new_token(bai: Bai, name: str, *options: str) -> str:
    return str(bai("token", "create", "-n", name, *options).stdout.strip())


def test_token_create_with_role_expiry_and_workspaces(bai: Bai) -> None:
    bai("token", "create", "-n", "r", "--role", "reader", "--expires-in", "30d")
    bai("token", "create", "-n", "w", "--role", "contributor", "--workspace", "ws", "-w", "rg/x")
    listed = {t["name"]: t for t in bai.json("token", "list")}
    assert listed["r"]["role"] == "reader" and listed["r"]["workspaces"] == []
    expires = datetime.fromisoformat(listed["r"]["expiryTime"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    assert listed["w"]["workspaces"] == ["default/ws", "rg/x"] and listed["w"]["expiryTime"] is None
    table = bai("token", "list", "-o", "table").stdout
    assert "reader" in table and "default/ws, rg/x" in table and "(all)" in table


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (["--expires-in", "soon"], "--expires-in"),
        (["--expires-in", "0m"], "--expires-in"),
        (["--workspace", "bad name"], "--workspace"),
        (["--workspace", "rg/"], "--workspace"),
        (["--role", "admin"], "--role"),
    ],
)
def test_token_create_refuses_bad_options_naming_them(
    bai: Bai, options: list[str], field: str
) -> None:
    refused = bai("token", "create", "-n", "t", *options, expect=2)
    assert field in refused.stderr
    assert bai.json("token", "list") == []  # nothing was made


def test_roles_through_the_server_and_the_audit_log(bai: Bai, server: Server) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    writer = through(bai, server, new_token(bai, "writer", "--role", "contributor"))
    reader = through(bai, server, new_token(bai, "reader", "--role", "reader"))
    owner = through(bai, server, new_token(bai, "boss"))
    writer("workspace", "create", "-n", "ws")
    writer("experiment", "create", "-w", "ws", "-n", "exp")
    assert reader.json("workspace", "show", "-n", "ws")["name"] == "ws"
    refused = reader("experiment", "delete", "-w", "ws", "-n", "exp", "-y", expect=5)
    assert "role reader" in refused.stderr
    assert reader.json("experiment", "show", "-w", "ws", "-n", "exp")["name"] == "exp"
    writer("experiment", "delete", "-w", "ws", "-n", "exp", "-y")

    entries = bai.json("audit", "list")
    assert [(e["token"], e["action"], e["result"], e["status"]) for e in entries] == [
        ("writer", "workspace.create", "succeeded", 200),
        ("writer", "experiment.create", "succeeded", 200),
        ("reader", "experiment.delete", "denied", 403),
        ("writer", "experiment.delete", "succeeded", 202),
    ]
    sub = server.subscription
    assert entries[1]["resource"] == (
        f"/subscriptions/{sub}/resourceGroups/default/providers/Microsoft.BatchAI"
        "/workspaces/ws/experiments/exp"
    )
    assert all(datetime.fromisoformat(e["time"]) >= before for e in entries)

    # filters, embedded and through the server (an owner's token) alike
    for cli in (bai, owner):
        assert [e["action"] for e in cli.json("audit", "list", "--token", "reader")] == [
            "experiment.delete"
        ]
        by_action = cli.json("audit", "list", "--action", "experiment.delete")
        assert [e["token"] for e in by_action] == ["reader", "writer"]
        assert len(cli.json("audit", "list", "--resource", "experiments/exp")) == 3
        assert cli.json("audit", "list", "--resource", "nothing-like-it") == []
        assert len(cli.json("audit", "list", "--since", "1h")) == 4
        assert cli.json("audit", "list", "--since", "2999-01-01T00:00:00Z") == []
    table = bai("audit", "list", "--token", "reader", "-o", "table").stdout
    assert "experiment.delete" in table and "denied" in table and "403" in table

    # the audit log is an owner's (of every workspace)
    assert "owner" in writer("audit", "list", expect=5).stderr
    assert "--since" in bai("audit", "list", "--since", "yesterday", expect=2).stderr

    # the server's log carries each entry as a JSON line
    def logged() -> list[dict[str, object]]:
        lines = (server.home / "serve.log").read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith('{"time"')]

    lines = wait_until(lambda: logged()[3:] and logged(), "the audit lines in the log")
    assert [(e["token"], e["action"], e["result"]) for e in lines[:4]] == [
        (e["token"], e["action"], e["result"]) for e in entries
    ]


def test_a_token_limited_to_a_workspace_through_the_cli(bai: Bai, server: Server) -> None:
    bai("workspace", "create", "-n", "ws")
    bai("workspace", "create", "-n", "other")
    mine = through(bai, server, new_token(bai, "mine", "--role", "contributor", "-w", "ws"))
    assert [w["name"] for w in mine.json("workspace", "list")] == ["ws"]
    mine("experiment", "create", "-w", "ws", "-n", "exp")
    refused = mine("experiment", "create", "-w", "other", "-n", "exp", expect=5)
    assert "limited to the workspaces default/ws" in refused.stderr
    assert bai.json("experiment", "list", "-w", "other") == []

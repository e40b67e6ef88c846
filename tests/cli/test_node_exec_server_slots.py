"""Node commands through a real ``bai serve`` wait on threads of their own: a tenant's long
commands hold up no other tenant's requests, and a token runs a bounded number at once (the
next is refused at once with 429, not queued)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx
import psutil
import pytest
from api.support import Server, start_server
from conftest import Bai
from polling import wait_until

from openbai.http.threads import NODE_EXEC_PER_TOKEN
from openbai.installation import App
from openbai.services import tokens
from openbai.services.tokens import Role
from openbai.settings import Settings

from .test_node_exec import ws  # noqa: F401  (the fixture: ws, exp, c1 with its nodes, acct/logs)


@pytest.fixture
def server(ws: Bai) -> Iterator[Server]:  # noqa: F811
    started = start_server(ws.home, ws.env)
    yield started
    started.stop()


def token(bai: Bai, name: str, role: Role, workspace: str) -> str:
    app = App.open(Settings.load({**os.environ, **bai.env}))
    try:
        return tokens.create_token(app, name, role=role, workspaces=[workspace])[1]
    finally:
        app.close()


def arm(server: Server, workspace: str, *segments: str) -> str:
    base = f"/subscriptions/{server.subscription}/resourceGroups/default"
    path = "/".join([f"/providers/Microsoft.BatchAI/workspaces/{workspace}", *segments])
    return f"{server.url}{base}{path}?api-version=2018-05-01"


def running(markers: list[str]) -> set[str]:
    """Those of ``markers`` that the command line of a shell running here holds."""
    seen = set()
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if cmdline and cmdline[0].endswith("bash"):
            seen |= {marker for marker in markers if any(marker in arg for arg in cmdline)}
    return seen


def test_long_node_commands_hold_up_no_other_tenant_and_a_token_runs_a_bounded_number(
    ws: Bai,  # noqa: F811
    server: Server,
    gates: Path,
) -> None:
    ws("workspace", "create", "-n", "ws2")
    ws("experiment", "create", "-w", "ws2", "-n", "e2")
    tenant = token(ws, "tenant", Role.CONTRIBUTOR, "ws")
    neighbour = token(ws, "neighbour", Role.READER, "ws2")
    colleague = token(ws, "colleague", Role.CONTRIBUTOR, "ws")
    url = arm(server, "ws", "clusters", "c1", "nodes", "c1-0", "exec")
    gate = gates / "gate"
    markers = [f"held-{uuid.uuid4().hex}" for _ in range(NODE_EXEC_PER_TOKEN)]

    def waiting(marker: str) -> dict[str, object]:
        # a command that waits for the gate, which the test opens once its checks are done
        command = f"while [ ! -e {gate} ]; do sleep 0.1; done; echo {marker}"
        return {"command": command, "timeoutSeconds": 600}

    def post(secret: str, payload: dict[str, object], timeout: float = 660) -> httpx.Response:
        headers = {"Authorization": f"Bearer {secret}"}
        return httpx.post(url, json=payload, headers=headers, timeout=timeout)

    pool = ThreadPoolExecutor(NODE_EXEC_PER_TOKEN)
    held: list[Future[httpx.Response]] = []
    try:
        held = [pool.submit(post, tenant, waiting(marker)) for marker in markers]
        wait_until(
            lambda: running(markers) == set(markers),
            f"{NODE_EXEC_PER_TOKEN} node commands running",
            timeout=60,
        )
        # another tenant's request is answered while they wait (a generous bound: with the
        # request threads held, it would wait for the gate, which is opened after it)
        listed = httpx.get(
            arm(server, "ws2", "experiments"),
            headers={"Authorization": f"Bearer {neighbour}"},
            timeout=30,
        )
        assert listed.status_code == 200, listed.text
        assert [e["name"] for e in listed.json()["value"]] == ["e2"]
        # the token's next command is refused at once, saying why
        refused = post(tenant, {"command": "true"}, timeout=30)
        assert refused.status_code == 429, refused.text
        error = refused.json()["error"]
        assert error["code"] == "TooManyRequests"
        assert "'tenant'" in error["message"] and str(NODE_EXEC_PER_TOKEN) in error["message"]
        # the bound is the token's: another token of the workspace still runs one
        other = post(colleague, {"command": "echo other"}, timeout=30)
        assert other.status_code == 200, other.text
        assert other.json()["stdout"] == "other\n"
        assert not any(future.done() for future in held)
    finally:
        gate.touch()
        pool.shutdown(wait=True)
    for future, marker in zip(held, markers, strict=True):
        answer = future.result()
        assert answer.status_code == 200, answer.text
        assert (answer.json()["exitCode"], answer.json()["stdout"]) == (0, f"{marker}\n")
    # the slots are given back when the commands end
    again = post(tenant, {"command": "echo again"}, timeout=30)
    assert again.status_code == 200 and again.json()["stdout"] == "again\n"


def test_a_worker_runs_a_bounded_number_of_node_commands_and_each_token_fewer() -> None:
    from openbai.http import threads

    with ExitStack() as held:
        for _ in range(threads.NODE_EXEC_PER_TOKEN):
            held.enter_context(threads.node_command_slot("a"))
        with pytest.raises(threads.NoSlotError, match="'a' already runs"):
            held.enter_context(threads.node_command_slot("a"))
        others = threads.NODE_EXEC_THREADS - threads.NODE_EXEC_PER_TOKEN
        for index in range(others):
            held.enter_context(threads.node_command_slot(f"t{index % 3}"))
        with pytest.raises(threads.NoSlotError, match="this server already runs"):
            held.enter_context(threads.node_command_slot("fresh"))
    # all given back, the refused ones too
    assert not threads._running
    with threads.node_command_slot("a"):
        assert threads._running == {"a": 1}

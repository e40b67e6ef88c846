"""``bai cluster node exec`` and ``bai job node exec --exec CMD`` through a real ``bai serve``:
the server runs the command on the node as the CLI does where the installation is, answers
its exit code and output, lets contributors and owners only, and audits every call."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api.support import BAI, Server, start_server
from conftest import Bai
from polling import wait_until

from openbai.installation import App
from openbai.services import tokens
from openbai.services.tokens import Role
from openbai.settings import Settings

from .conftest import submit
from .test_node_exec import ws  # noqa: F401  (the fixture: ws, exp, c1 with its nodes, acct/logs)

MiB = 1024 * 1024


@pytest.fixture
def server(ws: Bai) -> Iterator[Server]:  # noqa: F811
    started = start_server(ws.home, ws.env)
    yield started
    started.stop()


def token(bai: Bai, role: Role) -> str:
    app = App.open(Settings.load({**os.environ, **bai.env}))
    try:
        return tokens.create_token(app, f"t-{role}", role=role)[1]
    finally:
        app.close()


def exec_url(server: Server, *segments: str) -> str:
    base = f"/subscriptions/{server.subscription}/resourceGroups/default"
    path = "/".join(["/providers/Microsoft.BatchAI/workspaces/ws", *segments])
    return f"{server.url}{base}{path}?api-version=2018-05-01"


def post(url: str, secret: str, body: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {secret}"}
    return httpx.post(url, json=body, headers=headers, timeout=120)


def remote_bai(
    bai: Bai, server: Server, secret: str, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **bai.env, "BAI_SERVER": server.url, "BAI_TOKEN": secret}
    return subprocess.run(
        [BAI, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_only_contributors_and_owners_run_commands_and_each_call_is_audited(
    ws: Bai,  # noqa: F811
    server: Server,
) -> None:
    url = exec_url(server, "clusters", "c1", "nodes", "c1-1", "exec")
    marker = ws.home.parent / "ran"
    command = f"touch {marker}; echo $AZ_BATCH_NODE_ID; echo to-err >&2; exit 3"
    refused = post(url, token(ws, Role.READER), {"command": command})
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "AuthorizationFailed"
    assert not marker.exists()

    owner = token(ws, Role.OWNER)
    ran = post(url, owner, {"command": "echo $AZ_BATCH_NODE_ID; echo to-err >&2; exit 3"})
    assert ran.status_code == 200, ran.text
    assert ran.json() == {
        "exitCode": 3,
        "stdout": "c1-1\n",
        "stderr": "to-err\n",
        "stdoutTruncated": False,
        "stderrTruncated": False,
        "timedOut": False,
    }
    contributor = post(url, token(ws, Role.CONTRIBUTOR), {"command": "true"})
    assert contributor.status_code == 200 and contributor.json()["exitCode"] == 0

    audit = httpx.get(
        f"{server.url}/openbai/audit", headers={"Authorization": f"Bearer {owner}"}, timeout=30
    ).json()["value"]
    actions = [(e["action"], e["status"]) for e in audit if e["action"] == "cluster.node.exec"]
    assert sorted(actions) == [("cluster.node.exec", 200)] * 2 + [("cluster.node.exec", 403)]


def test_output_is_capped_and_a_command_out_of_time_is_killed(
    ws: Bai,  # noqa: F811
    server: Server,
) -> None:
    url = exec_url(server, "clusters", "c1", "nodes", "c1-0", "exec")
    owner = token(ws, Role.OWNER)
    big = post(url, owner, {"command": "head -c 3000000 /dev/zero | tr '\\0' a; echo done >&2"})
    assert big.status_code == 200, big.text
    answer = big.json()
    assert (answer["exitCode"], answer["stdoutTruncated"], answer["stderr"]) == (0, True, "done\n")
    assert answer["stdout"] == "a" * MiB
    slow = post(url, owner, {"command": "echo begun; sleep 600", "timeoutSeconds": 1}).json()
    assert (slow["timedOut"], slow["exitCode"], slow["stdout"]) == (True, 137, "begun\n")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "command"),
        ({"command": ""}, "command"),
        ({"command": 7}, "command"),
        ({"command": "echo a\u0000b"}, "command"),
        ({"command": "x" * 200_000}, "command"),
        ({"command": "true", "timeoutSeconds": 0}, "timeoutSeconds"),
        ({"command": "true", "timeoutSeconds": "5"}, "timeoutSeconds"),
        ({"command": "true", "timeoutSeconds": 999_999}, "timeoutSeconds"),
    ],
)
def test_a_bad_request_names_the_field(
    ws: Bai,  # noqa: F811
    server: Server,
    body: dict[str, object],
    field: str,
) -> None:
    url = exec_url(server, "clusters", "c1", "nodes", "c1-0", "exec")
    refused = post(url, server.token, body)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["target"] == field


def test_the_cli_through_the_server_prints_the_output_and_exits_with_its_code(
    ws: Bai,  # noqa: F811
    server: Server,
) -> None:
    secret = token(ws, Role.CONTRIBUTOR)
    ran = remote_bai(ws, server, secret, "cluster", "node", "exec", "-w", "ws", "-c", "c1",
                     "-n", "c1-1", "--exec", "echo $AZ_BATCH_NODE_ID; echo oops >&2; exit 7")  # fmt: skip
    assert (ran.returncode, ran.stdout, ran.stderr) == (7, "c1-1\n", "oops\n")
    first = remote_bai(ws, server, secret, "cluster", "node", "exec", "-w", "ws", "-c", "c1",
                       "--exec", "echo $AZ_BATCH_NODE_ID")  # fmt: skip
    assert (first.returncode, first.stdout) == (0, "c1-0\n")
    # no terminal through a server: a shell is refused, naming the flag
    shell = remote_bai(ws, server, secret, "cluster", "node", "exec", "-w", "ws", "-c", "c1")
    assert shell.returncode == 2 and "--exec" in shell.stderr
    unknown = remote_bai(ws, server, secret, "cluster", "node", "exec", "-w", "ws", "-c", "c1",
                         "-n", "c1-9", "--exec", "true")  # fmt: skip
    assert unknown.returncode == 3 and "c1-9" in unknown.stderr
    reader = remote_bai(ws, server, token(ws, Role.READER), "cluster", "node", "exec",
                        "-w", "ws", "-c", "c1", "--exec", "true")  # fmt: skip
    assert reader.returncode != 0 and "reader" in reader.stderr


def test_job_node_exec_through_the_server_reaches_the_running_job(
    ws: Bai,  # noqa: F811
    server: Server,
    tmp_path: Path,
) -> None:
    submit(
        ws,
        tmp_path,
        "j",
        "echo started > $AZ_BATCHAI_JOB_TEMP/state;"
        " while [ ! -e $AZ_BATCHAI_JOB_TEMP/go ]; do sleep 0.1; done; echo released",
    )
    secret = token(ws, Role.OWNER)
    job = ["job", "node", "exec", "-w", "ws", "-e", "exp", "-j", "j"]
    job_temp = "$AZ_BATCHAI_JOB_TEMP_DIR/ws/exp/j"

    def state() -> str:
        ran = remote_bai(ws, server, secret, *job, "--exec", f"cat {job_temp}/state 2>/dev/null")
        return ran.stdout

    assert wait_until(state, "job j started", timeout=90) == "started\n"
    go = remote_bai(ws, server, secret, *job, "--exec", f"touch {job_temp}/go")
    assert go.returncode == 0, go.stderr
    assert ws.wait("j", timeout=90)["executionState"] == "succeeded"
    after = remote_bai(ws, server, secret, *job, "--exec", "true")
    assert after.returncode != 0 and "not running" in after.stderr

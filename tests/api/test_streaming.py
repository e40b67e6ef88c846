"""Following a job's output through a real server: each line reaches the client while the job
runs, the stream ends with the job, and a broken stream resumes."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Generator
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import Bai
from polling import wait_until

from openbai.cli.remote import RemoteClient
from openbai.errors import AuthError
from openbai.http.threads import REQUEST_THREADS
from openbai.installation import App
from openbai.services import tokens
from openbai.settings import Settings

from .support import API, BAI, Server, job_body, start_server

WRITER = (
    "python3 -u -c 'import time\n"
    "for i in range(80):\n"
    '    print("line", i, flush=True); time.sleep(0.025)\''
)


def setup_job(server: Server, bai: Bai, command: str) -> RemoteClient:
    bai("storage", "account", "create", "-n", "acct")
    bai("storage", "share", "create", "--account", "acct", "-n", "logs")
    base = f"/subscriptions/{server.subscription}/resourceGroups/rg/providers/Microsoft.BatchAI"
    with server.client() as http:
        http.put(f"{base}/workspaces/ws?{API}", json={"location": "local"})
        http.put(f"{base}/workspaces/ws/experiments/exp?{API}")
        scale = {"properties": {"scaleSettings": {"manual": {"targetNodeCount": 1}}}}
        http.put(f"{base}/workspaces/ws/clusters/c1?{API}", json=scale)
        created = http.put(
            f"{base}/workspaces/ws/experiments/exp/jobs/j?{API}", json=job_body(command)
        )
        assert created.status_code == 200, created.text
    return RemoteClient(server.url, server.token)


def test_lines_arrive_in_order_while_the_job_runs_and_the_stream_ends_with_it(
    server: Server, bai: Bai
) -> None:
    """The latency of each line is measured by ``python -m bench api``."""
    client = setup_job(server, bai, WRITER)
    received, while_running = b"", 0
    for chunk in client.stream_job_file(
        "rg", "ws", "exp", "j", "stdout.txt", directory_id="stdouterr", path="."
    ):
        received += chunk
        if client.get_job("rg", "ws", "exp", "j")["properties"]["executionState"] == "running":
            while_running = received.count(b"\n")
    job = client.get_job("rg", "ws", "exp", "j")["properties"]
    assert received == b"".join(f"line {i}\n".encode() for i in range(80)), job
    assert while_running > 0  # followed as it was written, not read once the job had ended
    assert job["executionState"] == "succeeded"
    client.close()


def test_a_broken_stream_resumes_from_its_offset(server: Server, bai: Bai) -> None:
    client = setup_job(server, bai, "for i in $(seq 1 30); do echo line $i; sleep 0.03; done")
    args = ("rg", "ws", "exp", "j", "stdout.txt")
    first = b""
    stream = client.stream_job_file(*args, directory_id="stdouterr", path=".")
    for chunk in stream:
        first += chunk
        if len(first) > 20:
            break
    assert isinstance(stream, Generator)
    stream.close()  # the client went away mid-file
    rest = b"".join(
        client.stream_job_file(*args, directory_id="stdouterr", path=".", offset=len(first))
    )
    assert first + rest == b"".join(f"line {i}\n".encode() for i in range(1, 31))
    client.close()


def test_followers_waiting_for_output_hold_none_of_the_threads_requests_run_on(
    server: Server, bai: Bai, gates: Path
) -> None:
    """More clients follow a quiet job's output than a server process has threads for its
    requests' blocking work (openbai.http.threads): their waits are on threads of their own,
    so a request that needs one (a create) is answered meanwhile."""
    gate = gates / "gate"
    client = setup_job(server, bai, f"echo started; while [ ! -e {gate} ]; do sleep 0.05; done")
    followers = REQUEST_THREADS * 2 + 1
    received: list[bytes] = [b""] * followers
    started = threading.Barrier(followers + 1)

    def follow(index: int) -> None:
        own = RemoteClient(server.url, server.token)
        args = ("rg", "ws", "exp", "j", "stdout.txt")
        for chunk in own.stream_job_file(*args, directory_id="stdouterr", path="."):
            received[index] += chunk
            if received[index] == b"started\n":
                started.wait(timeout=60)
        own.close()

    threads = [threading.Thread(target=follow, args=(i,)) for i in range(followers)]
    for thread in threads:
        thread.start()
    started.wait(timeout=60)  # every follower now waits for the job's next line
    base = f"/subscriptions/{server.subscription}/resourceGroups/rg/providers/Microsoft.BatchAI"
    with server.client(timeout=20) as http:
        answer = http.put(f"{base}/workspaces/ws/experiments/meanwhile?{API}")
    assert answer.status_code == 200, answer.text
    gate.touch()
    for thread in threads:
        thread.join(timeout=60)
    assert received == [b"started\n"] * followers
    assert client.get_job("rg", "ws", "exp", "j")["properties"]["executionState"] == "succeeded"
    client.close()


def test_followers_ride_out_a_restart_of_the_server(server: Server, bai: Bai, gates: Path) -> None:
    """``job file stream`` and ``job wait`` through ``--server`` keep reaching for a server that
    went away (a restart under systemd), and go on where they were once it is back."""
    gate = gates / "gate"
    client = setup_job(
        server, bai, f"echo before; while [ ! -e {gate} ]; do sleep 0.05; done; echo after"
    )
    received: list[bytes] = []
    broken: list[BaseException] = []

    def follow() -> None:
        try:
            args = ("rg", "ws", "exp", "j", "stdout.txt")
            received.extend(client.stream_job_file(*args, directory_id="stdouterr", path="."))
        except BaseException as e:
            broken.append(e)

    follower = threading.Thread(target=follow)
    follower.start()
    wait_until(lambda: b"".join(received) == b"before\n", "the first line", timeout=60)
    remote = {**bai.env, "BAI_SERVER": server.url, "BAI_TOKEN": server.token}
    waiter = subprocess.Popen(
        [BAI, "job", "wait", "-g", "rg", "-w", "ws", "-e", "exp", "-n", "j", "--interval", "0.2"],
        env={**os.environ, **remote},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server.process.kill()
    server.process.wait()
    time.sleep(4)  # longer than the few quick retries a follower used to give up after
    gate.touch()
    port = int(server.url.rsplit(":", 1)[1])
    server.process = start_server(server.home, bai.env, port=port).process
    follower.join(timeout=60)
    assert broken == [] and b"".join(received) == b"before\nafter\n"
    _, said = waiter.communicate(timeout=60)
    assert waiter.returncode == 0, said
    client.close()


@pytest.mark.parametrize("token_end", ["deleted", "expired"])
def test_a_stream_breaks_within_seconds_once_its_token_is_deleted_or_expired(
    server: Server, bai: Bai, gates: Path, token_end: str
) -> None:
    """Its token is checked while a stream runs, not only when it began: the follower's
    connection breaks, and its reconnection is refused."""
    gate = gates / "gate"
    setup_job(server, bai, f"while [ ! -e {gate} ]; do echo tick; sleep 0.2; done").close()
    app = App.open(Settings.load(bai.env))
    lifetime = timedelta(seconds=3) if token_end == "expired" else None
    _, secret = tokens.create_token(app, "follower", lifetime=lifetime)
    app.close()
    follower = RemoteClient(server.url, secret)
    args = ("rg", "ws", "exp", "j", "stdout.txt")
    stream = follower.stream_job_file(*args, directory_id="stdouterr", path=".")
    try:
        assert next(stream).startswith(b"tick\n")
        if token_end == "deleted":
            bai("token", "delete", "-n", "follower")
        ended = time.monotonic()  # expired: within 3 s of this
        with pytest.raises(AuthError):
            for _ in stream:
                assert time.monotonic() - ended < 30, "the stream goes on"
        assert time.monotonic() - ended < 10
    finally:
        gate.touch()
        follower.close()

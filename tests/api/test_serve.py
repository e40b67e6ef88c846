"""``bai serve``: runs the dispatcher in-process (or waits for the lock another one holds)
and shuts down cleanly on SIGTERM and SIGINT."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from conftest import Bai
from polling import wait_until

from openbai.installation import App
from openbai.scheduling.dispatcher import Dispatcher
from openbai.scheduling.in_server import DispatcherThread

from .support import API, BAI, free_port, start_server


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stops_cleanly_on_a_signal(bai: Bai, sig: signal.Signals) -> None:
    server = start_server(bai.home, bai.env)
    assert (bai.home / "dispatcher.sock").exists()  # the in-process dispatcher listens
    server.process.send_signal(sig)
    assert server.process.wait(20) == 0
    assert not (bai.home / "dispatcher.sock").exists()
    assert "Traceback" not in (bai.home / "serve.log").read_text()


def test_dispatcher_takes_over_when_the_other_one_leaves(
    service: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = Dispatcher(service)
    assert other.try_acquire()
    thread = DispatcherThread(service)
    tries: list[bool] = []
    acquire = thread.dispatcher.try_acquire

    def counted_acquire() -> bool:
        tries.append(acquire())
        return tries[-1]

    monkeypatch.setattr(thread.dispatcher, "try_acquire", counted_acquire)
    thread.start()
    try:
        wait_until(lambda: tries, "try for the lock")
        assert not any(tries) and not thread._holds_lock.is_set()
        service.changed()  # goes to the other dispatcher meanwhile
        other.close()
        wait_until(thread._holds_lock.is_set, "lock taken after the other dispatcher left")
        service.changed()  # now wakes the in-process one
    finally:
        thread.close()
        # the lock file names this (pytest's) process: the bai fixture would SIGTERM it
        (service.settings.home / "dispatcher.lock").write_text("")
    assert not thread._thread.is_alive()


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_serve_keeps_its_state_in_the_database_given_for_the_run(
    bai: Bai, database: str, tmp_path: Path
) -> None:
    """``bai serve --database URL``: the run's API reads and writes that database, the
    installation's own (SQLite here) is left alone."""
    on_postgres = Bai(bai.home, {**bai.env, "OPENBAI_DATABASE_URL": database})
    token = on_postgres("token", "create", "-n", "server").stdout.strip()
    bai.env["OPENBAI_DATABASE_URL"] = ""  # the installation's default: SQLite
    port = free_port()
    env = {**os.environ, **bai.env}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [BAI, "serve", "--port", str(port), "--database", database],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _healthy(url), "bai serve answering", timeout=60)
        sub = on_postgres.json("config", "show")["subscriptionId"]
        created = httpx.put(
            f"{url}/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.BatchAI"
            f"/workspaces/teamws?{API}",
            json={"location": "local"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert created.status_code == 200, created.text
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    assert [w["name"] for w in on_postgres.json("workspace", "list")] == ["teamws"]
    assert bai.json("workspace", "list") == []


def test_serve_refuses_a_database_it_cannot_use(bai: Bai) -> None:
    result = bai(
        "serve", "--port", "0", "--database", "postgresql://someone:s3cret@127.0.0.1:1/nothing",
        expect=2,
    )  # fmt: skip
    assert "--database" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False

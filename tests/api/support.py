"""Helpers of the API tests: ARM paths, job bodies, waiting, and a real ``bai serve``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from job_files import logged_job

from openbai.installation import App
from openbai.services import tokens
from openbai.settings import Settings

API = "api-version=2018-05-01"
BAI = str(Path(sys.executable).with_name("bai"))


@dataclass
class Arm:
    """ARM paths of one installation: ``arm.rg("workspaces", "ws")``."""

    subscription: str
    resource_group: str = "rg"

    def rg(self, *segments: str, query: str = "") -> str:
        path = f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
        return self._url(f"{path}/providers/Microsoft.BatchAI", segments, query)

    def sub(self, *segments: str, query: str = "") -> str:
        return self._url(
            f"/subscriptions/{self.subscription}/providers/Microsoft.BatchAI", segments, query
        )

    @staticmethod
    def _url(prefix: str, segments: tuple[str, ...], query: str) -> str:
        return "/".join([prefix, *segments]) + f"?{API}" + (f"&{query}" if query else "")


def job_body(command: str, **properties: Any) -> dict[str, Any]:
    return {"properties": logged_job(command, **{"cluster": {"id": "c1"}, **properties})}


def wait_for_job(client: httpx.Client, url: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(url).json()
        if job["properties"]["executionState"] in ("succeeded", "failed"):
            return dict(job)
        assert time.monotonic() < deadline, f"job still {job['properties']['executionState']}"
        time.sleep(0.1)


# -- a real server ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    token: str
    home: Path
    subscription: str
    process: subprocess.Popen[bytes]

    def client(self, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.Client(base_url=self.url, headers=headers, **{"timeout": 30, **kwargs})

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


def start_server(home: Path, env: dict[str, str] | None = None, *, port: int = 0) -> Server:
    environ = {**os.environ, **(env or {}), "OPENBAI_HOME": str(home), "BAI_SERVER": ""}
    settings = Settings.load(environ)
    app = App.open(settings)
    try:
        token = tokens.create_token(app, f"server-{time.monotonic_ns()}")[1]
    finally:
        app.close()
    port = port or free_port()
    log = open(home / "serve.log", "ab")
    process = subprocess.Popen(
        [BAI, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=environ,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"bai serve did not start:\n{(home / 'serve.log').read_text()}")
        time.sleep(0.05)
    return Server(url, token, home, settings.subscription_id, process)


def delete_and_wait(client: httpx.Client, url: str, timeout: float = 60) -> httpx.Response:
    """DELETE as ARM clients do it: 202, then poll the ``Azure-AsyncOperation`` URL."""
    response = client.delete(url)
    assert response.status_code == 202, response.text
    assert response.headers["Location"] == response.headers["Azure-AsyncOperation"]
    assert response.headers["Retry-After"] == "1"
    deadline = time.monotonic() + timeout
    while True:
        status = client.get(response.headers["Azure-AsyncOperation"])
        if status.json()["status"] != "InProgress":
            assert status.status_code == 200 and status.json()["status"] == "Succeeded"
            return status
        assert status.status_code == 202
        assert time.monotonic() < deadline, f"{url} still being deleted"
        time.sleep(0.1)

"""A file server's life with real nfs-ganesha: several callers finding it gone start one NFS
server, not one each, and the one that runs is the one delete stops."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import Bai
from nfs_fixture import missing

from openbai.storage.nfs_server import NfsServer

BAI = str(Path(sys.executable).with_name("bai"))
CREATE = ("--disk-count", "1", "--disk-size", "10", "-s", "STANDARD_D14",
          "--storage-sku", "Standard_LRS")  # fmt: skip


@pytest.fixture(autouse=True)
def nfs_ready() -> None:
    reason = missing()
    if reason is not None:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(reason)


def _server(bai: Bai, name: str) -> NfsServer:
    return NfsServer(bai.home / "file-servers" / "default" / "ws" / name)


def _ganeshas(server: NfsServer) -> list[int]:
    """The ganesha processes serving ``server``'s directory, whoever started them."""
    conf = str(server.directory / "ganesha.conf")
    return [p.pid for p in psutil.process_iter(["cmdline"]) if conf in (p.info["cmdline"] or [])]


def test_callers_finding_a_file_server_gone_at_once_start_one_nfs_server(workspace: Bai) -> None:
    bai = workspace
    bai("file-server", "create", "-w", "ws", "-n", "nfs", *CREATE)
    server = _server(bai, "nfs")
    assert len(_ganeshas(server)) == 1

    # the API's threads and the dispatcher, in one process
    server.stop()
    assert _ganeshas(server) == []
    states: list[Any] = []
    threads = [
        threading.Thread(target=lambda: states.append(NfsServer(server.directory).ensure_running()))
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(states) == 6 and len({s.pid for s in states}) == 1
    assert _ganeshas(server) == [states[0].pid]

    # several bai commands at once, each in its own process
    server.stop()
    assert _ganeshas(server) == []
    env = {**os.environ, **bai.env}
    shows = [
        subprocess.Popen(
            [BAI, "file-server", "show", "-w", "ws", "-n", "nfs", "-o", "json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [show.communicate(timeout=120) for show in shows]
    assert [show.returncode for show in shows] == [0] * 4, outputs
    assert {json.loads(out)["mountSettings"]["mountPoint"] for out, _ in outputs} == {"/mnt/data"}
    (running,) = _ganeshas(server)
    recorded = server.state()
    assert server.is_running() and recorded is not None and recorded.pid == running

    # the one running is the one recorded, so delete stops it
    bai("file-server", "delete", "-w", "ws", "-n", "nfs", "-y")
    assert _ganeshas(server) == []
    assert not server.is_running()

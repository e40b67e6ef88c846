"""A file server's ganesha that dies while a job writes to it, with real nfs-ganesha and a
real job: the dispatcher starts it again at once (same ports), the job's mount reconnects,
and not a line of the job's stdout is lost."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from conftest import Bai
from polling import wait_until

from openbai.mounts.registry import fuse_available
from openbai.storage.nfs_server import NfsServer

from .conftest import FILE_SERVER, nfs_job, write_job

pytestmark = [
    pytest.mark.skipif(not fuse_available(), reason="no FUSE"),
    pytest.mark.usefixtures("nfs_ready"),
]


def _lines(data: Path) -> list[str]:
    found = list(data.glob("*/*/workspaces/ws/experiments/exp/jobs/lines/*/stdouterr/stdout.txt"))
    return found[0].read_text().splitlines() if found else []


@pytest.mark.timeout(300)
def test_a_file_server_that_dies_mid_job_is_started_again_and_the_job_loses_no_line(
    workspace: Bai, tmp_path: Path, gates: Path
) -> None:
    bai = workspace
    created = bai.json("file-server", "create", "-w", "ws", "-n", "nfs", *FILE_SERVER)
    server = NfsServer(bai.home / "file-servers" / "default" / "ws" / "nfs")
    go = gates / "go"
    command = (
        "for i in $(seq 1 5); do echo line $i; done;"
        f" while [ ! -e {go} ]; do sleep 0.05; done;"
        " for i in $(seq 6 20); do echo line $i; sleep 0.1; done"
    )
    job = write_job(tmp_path, nfs_job(created["id"], command), "lines.json")
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "lines", "-f", job)
    wait_until(lambda: len(_lines(server.data / "shared")) == 5, "first lines", timeout=120)

    before = server.state()
    assert before is not None
    os.kill(before.pid, signal.SIGKILL)
    wait_until(lambda: not server.is_running(), "ganesha gone")
    go.touch()  # the job writes on while its server is gone

    # nothing but the dispatcher looks (no `file-server show`, no job planned)
    wait_until(server.is_running, "ganesha started again", timeout=15)
    after = server.state()
    assert after is not None and after.pid != before.pid
    assert (after.host, after.port, after.mount_port) == (
        before.host,
        before.port,
        before.mount_port,
    )

    done = bai.wait("lines", timeout=120)
    assert done["executionState"] == "succeeded", bai.why(done)
    out = bai("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "lines", "-f", "stdout.txt")
    assert out.stdout == "".join(f"line {i}\n" for i in range(1, 21))

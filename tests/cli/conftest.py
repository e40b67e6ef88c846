"""``any_bai``: the ``bai`` fixture in process, and again through a real ``bai serve``
(``--server``), so each command is checked both ways."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api.support import start_server
from conftest import Bai
from job_files import with_logs_share, write_job


@pytest.fixture(params=["embedded", "server"])
def any_bai(request: pytest.FixtureRequest, bai: Bai) -> Iterator[Bai]:
    if request.param == "embedded":
        yield bai
        return
    server = start_server(bai.home, bai.env)
    try:
        yield Bai(bai.home, {**bai.env, "BAI_SERVER": server.url, "BAI_TOKEN": server.token})
    finally:
        server.stop()


@pytest.fixture
def ws(any_bai: Bai) -> Bai:
    """Workspace ``ws``, experiment ``exp``, a 2-node cluster ``c1`` and share acct/logs."""
    return with_logs_share(any_bai)


def job_file(tmp_path: Path, command: str) -> str:
    """A job.json running ``command`` on one node, its stdout/stderr in share acct/logs."""
    return write_job(tmp_path / "job.json", command)


def submit(bai: Bai, tmp_path: Path, name: str, command: str, *, cluster: str = "c1") -> None:
    """``bai job create`` of a job running ``command`` (see :func:`job_file`) in ws/exp."""
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", cluster, "-n", name,
        "-f", job_file(tmp_path, command))  # fmt: skip

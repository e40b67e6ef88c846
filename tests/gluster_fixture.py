"""Pytest fixtures: a one-brick GlusterFS volume (glusterd on 127.0.0.1:24007) for the session.

Import what a module needs (``from gluster_fixture import gluster_server``: fixture ``gluster``).

- With ``OPENBAI_GLUSTER_STATE`` set (the DIR of ``scripts/services/gluster.sh start DIR``),
  the server running there is used.
- Otherwise one is started in a temporary directory and stopped (its processes ended) at the
  end. Its bricks find glusterd only on port 24007, so it is skipped when that port is taken.
- Without glusterd or the glusterfs client the tests are skipped, except in CI (``CI`` set),
  where they fail.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from openbai.storage.gluster_server import DEFAULT_PORT, GlusterServer
from openbai.storage.nfs_server import answers

STATE_ENV = "OPENBAI_GLUSTER_STATE"


@dataclass(frozen=True)
class Gluster:
    """A running glusterd and its volume; ``brick`` is where the volume's files lie."""

    host: str
    port: int
    volume: str
    brick: Path
    server: GlusterServer


def missing() -> str | None:
    for program in ("glusterd", "gluster", "glusterfs"):
        if shutil.which(program) is None:
            return f"{program} is not installed (scripts/services/gluster.sh install)"
    return None


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _of(server: GlusterServer) -> Gluster:
    state = server.state()
    assert state is not None
    return Gluster(state.host, state.port, state.volume, server.brick(state.volume), server)


@pytest.fixture(scope="session", name="gluster")
def gluster_server() -> Iterator[Gluster]:
    given = os.environ.get(STATE_ENV)
    if given:
        yield _of(GlusterServer(Path(given)))
        return
    reason = missing()
    if reason is not None:
        _unavailable(reason)
    if answers("127.0.0.1", DEFAULT_PORT):
        _unavailable(f"port {DEFAULT_PORT} is taken: another glusterd runs here")
    directory = Path(tempfile.mkdtemp(prefix="openbai-test-gluster."))
    server = GlusterServer(directory)
    try:
        server.start()
        yield _of(server)
    finally:
        server.remove()

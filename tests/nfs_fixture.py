"""Pytest fixtures: a real NFS server (nfs-ganesha, userspace, NFSv3 and v4) for the session.

Import what a module needs (``from nfs_fixture import nfs_server``).

- With ``OPENBAI_NFS_STATE`` set (the DIR of ``scripts/services/nfs.sh start DIR``), the
  server running there is used: CI starts one for the whole run.
- Otherwise one is started in a temporary directory on free ports and stopped at the end.
- Without ganesha or libnfs the tests are skipped, except in CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import ctypes.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from openbai.storage.nfs_server import EXPORT_PATH, NfsServer

STATE_ENV = "OPENBAI_NFS_STATE"


@dataclass(frozen=True)
class Nfs:
    """A running ganesha: its address, ports and the directory it exports (``data``)."""

    host: str
    port: int
    mount_port: int
    data: Path
    export: str = EXPORT_PATH

    def options(self, version: int = 3, **overrides: Any) -> dict[str, Any]:
        """The options of an NFS backend for this server's export."""
        return {
            "host": self.host,
            "export": self.export,
            "version": version,
            "port": self.port,
            "mount_port": self.mount_port,
            **overrides,
        }


def missing() -> str | None:
    if shutil.which("ganesha.nfsd") is None:
        return "nfs-ganesha is not installed (scripts/services/nfs.sh install)"
    if ctypes.util.find_library("nfs") is None:
        return "libnfs is not installed (scripts/services/nfs.sh install)"
    return None


def _of(server: NfsServer) -> Nfs:
    state = server.state()
    assert state is not None
    return Nfs(state.host, state.port, state.mount_port, server.data)


@pytest.fixture(scope="session")
def nfs_server() -> Iterator[Nfs]:
    given = os.environ.get(STATE_ENV)
    if given:
        yield _of(NfsServer(Path(given)))
        return
    reason = missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    directory = Path(tempfile.mkdtemp(prefix="openbai-test-nfs."))
    server = NfsServer(directory)
    server.start()
    try:
        yield _of(server)
    finally:
        server.remove()

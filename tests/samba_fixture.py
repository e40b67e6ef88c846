"""Pytest plugin: a Samba server (the stand-in for Azure Files over SMB 3) for the session.

Load it with ``pytest_plugins = ["samba_fixture"]`` in the root conftest.

- With ``OPENBAI_SAMBA_STATE`` set (the DIR of ``scripts/services/samba.sh start DIR PORT``),
  the Samba running there is used: CI starts one for the whole run.
- Otherwise one is started with ``samba.sh`` on a free port in a temporary directory (samba is
  apt-installed on first use when missing), and stopped at the end.
- Without smbd (and no way to install it) the tests are skipped, except in CI (``CI`` set),
  where they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "services" / "samba.sh"
STATE_ENV = "OPENBAI_SAMBA_STATE"


@dataclass(frozen=True)
class Samba:
    """A running smbd: where it listens, who may log in, and how shares are made (``config``)."""

    host: str
    port: int
    user: str
    password: str
    config: Path  # its smb.conf: the share admin hook (``net -s CONFIG conf addshare ...``)
    state: Path  # the DIR given to samba.sh

    @property
    def file_endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def share_root(self) -> Path:
        """The directory holding every share (what the server sees; for tests that peek)."""
        return self.state / "shares"

    def options(self, **overrides: Any) -> dict[str, Any]:
        """The options of an ``azure`` account whose file shares live on this Samba."""
        return {
            "file_endpoint": self.file_endpoint,
            "account_name": self.user,
            "account_key": self.password,
            "samba_config": str(self.config),
            **overrides,
        }


def samba_sh(*args: str) -> str:
    result = subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"samba.sh {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def read_env(state: Path) -> Samba:
    """The Samba set up in ``state`` by ``samba.sh start``."""
    values = dict(
        line.split("=", 1) for line in samba_sh("env", str(state)).splitlines() if "=" in line
    )
    return Samba(
        host="127.0.0.1",
        port=int(values["OPENBAI_SAMBA_PORT"]),
        user=values["OPENBAI_SAMBA_USER"],
        password=values["OPENBAI_SAMBA_PASSWORD"],
        config=Path(values["OPENBAI_SAMBA_CONFIG"]),
        state=Path(values["OPENBAI_SAMBA_STATE"]),
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_samba() -> None:
    """Skip (fail in CI) when smbd is missing and cannot be installed (not root, no apt)."""
    if shutil.which("smbd") or (os.geteuid() == 0 and shutil.which("apt-get")):
        return
    reason = "Samba is missing (scripts/services/samba.sh install, as root)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def samba() -> Iterator[Samba]:
    state = os.environ.get(STATE_ENV)
    if state:
        yield read_env(Path(state))
        return
    require_samba()
    with tempfile.TemporaryDirectory(prefix="openbai-samba-") as directory:
        try:
            samba_sh("start", directory, str(free_port()))
            yield read_env(Path(directory))
        finally:
            samba_sh("stop", directory)

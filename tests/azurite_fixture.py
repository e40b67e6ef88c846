"""Pytest plugin: an Azurite (Azure Blob emulator) for the whole test session.

Use it with ``from azurite_fixture import azurite`` in a conftest (the tests directory must be
on ``sys.path``), or ``pytest_plugins = ["azurite_fixture"]`` in the root conftest.

- With ``OPENBAI_AZURITE_BLOB_ENDPOINT`` set (``http://127.0.0.1:10000/devstoreaccount1``),
  the running Azurite there is used: CI starts one for the whole run.
- Otherwise one is started with ``scripts/services/azurite.sh`` (installing it into
  ``.services/`` on first use) on a free port in a temporary directory, and stopped at the end.
- Without node/npm the tests are skipped, except in CI (``CI`` set), where they fail.
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

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "services" / "azurite.sh"
ACCOUNT_NAME = "devstoreaccount1"
# Azurite's well-known development key (public, the same for every Azurite): not a secret.
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
ENDPOINT_ENV = "OPENBAI_AZURITE_BLOB_ENDPOINT"


@dataclass(frozen=True)
class Azurite:
    blob_endpoint: str
    account_name: str = ACCOUNT_NAME
    account_key: str = ACCOUNT_KEY

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account_name};"
            f"AccountKey={self.account_key};BlobEndpoint={self.blob_endpoint};"
        )


class AzuriteProcess:
    """One Azurite started through ``scripts/services/azurite.sh`` with data in ``location``."""

    def __init__(self, location: Path, port: int | None = None):
        self.location = location
        self.port = port or free_port()

    @property
    def azurite(self) -> Azurite:
        return Azurite(f"http://127.0.0.1:{self.port}/{ACCOUNT_NAME}")

    def start(self) -> Azurite:
        _script("start", str(self.location), str(self.port))
        return self.azurite

    def stop(self) -> None:
        _script("stop", str(self.location))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _script(*args: str) -> None:
    result = subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"azurite.sh {' '.join(args)} failed:\n{result.stderr}")


def require_node() -> None:
    """Skip (fail in CI) when Azurite cannot be installed or run here."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if not missing:
        return
    reason = f"Azurite needs {' and '.join(missing)} (apt-get install nodejs npm)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    endpoint = os.environ.get(ENDPOINT_ENV)
    if endpoint:
        yield Azurite(endpoint.rstrip("/"))
        return
    require_node()
    with tempfile.TemporaryDirectory(prefix="openbai-azurite-") as location:
        process = AzuriteProcess(Path(location))
        try:
            yield process.start()
        finally:
            process.stop()

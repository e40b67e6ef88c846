"""Pytest fixture: podman, set up for this machine, and the local test image.

Import the fixture into a test module (``from podman_fixture import podman_fixture``); tests
then take ``podman: Podman``.

- podman and the image come from ``scripts/services/podman.sh``: ``install`` (apt-get install
  podman runc, the containers.conf settings) and ``image`` (a Debian minbase image with bash
  and python3, built once with debootstrap and kept in podman's store).
- Without podman the tests are skipped, except in CI (``CI`` set), where podman is installed
  (as root) or the tests fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "services" / "podman.sh"


@dataclass(frozen=True)
class Podman:
    #: the local test image: Debian bookworm with bash and python3, and /etc/openbai-test-image
    image: str

    def containers(self, prefix: str = "openbai-") -> list[str]:
        """Names of the containers (running or not) whose name starts with ``prefix``."""
        done = subprocess.run(
            ["podman", "ps", "-a", "--format", "{{.Names}}"],
            capture_output=True,
            text=True,
            check=True,
        )
        return [n for n in done.stdout.split() if n.startswith(prefix)]


def _script(*args: str) -> str:
    result = subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=900, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"podman.sh {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout.strip()


@pytest.fixture(scope="session", name="podman")
def podman_fixture() -> Podman:
    if shutil.which("podman") is None:
        if not os.environ.get("CI"):
            pytest.skip("podman is missing (scripts/services/podman.sh install, as root)")
        _script("install")
    else:
        _script("install")  # idempotent: makes sure the containers.conf settings are there
    return Podman(image=_script("image"))

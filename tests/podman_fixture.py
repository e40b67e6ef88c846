"""Pytest fixture: podman, set up for this machine, and the local test image.

Import the fixture into a test module (``from podman_fixture import podman_fixture``); tests
then take ``podman: Podman``.

- podman and the image come from ``scripts/services/podman.sh``: ``install`` (apt-get install
  podman runc, the containers.conf settings) and ``image`` (a Debian minbase image with bash,
  python3 and OpenMPI, built once with debootstrap and kept in podman's store).
- Without podman the tests are skipped, except in CI (``CI`` set), where podman is installed
  (as root) or the tests fail.
- ``registry`` (import ``registry_fixture``): a private registry (Debian's docker-registry,
  plain HTTP on 127.0.0.1, htpasswd login) holding the test image as ``team/private:1``. The
  jobs' podman finds it through ``CONTAINERS_REGISTRIES_CONF`` (a registries.conf that marks
  it insecure, i.e. HTTP), which must be in the environment before the dispatcher starts.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "services" / "podman.sh"


@dataclass(frozen=True)
class Podman:
    #: the local test image: Debian bookworm with bash, python3, OpenMPI and mpi4py, and
    #: /etc/openbai-test-image
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

    def derived(self, name: str, script: str) -> str:
        """The test image changed by ``script`` (run in it with sh), made once for each build
        of the test image (``podman commit``): tagged with the test image's id, whatever its
        own name."""
        base_id = subprocess.run(
            ["podman", "image", "inspect", "--format", "{{.Id}}", self.image],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        image = f"localhost/openbai/test-derived-{name}:{base_id[:12]}"
        if subprocess.run(["podman", "image", "exists", image], check=False).returncode == 0:
            return image
        builder = f"openbai-test-derive-{os.getpid()}"
        try:
            subprocess.run(
                ["podman", "run", "--name", builder, self.image, "sh", "-c", script],
                capture_output=True,
                check=True,
            )
            subprocess.run(
                ["podman", "commit", "-q", builder, image], capture_output=True, check=True
            )
        finally:
            subprocess.run(["podman", "rm", "-f", builder], capture_output=True, check=False)
        return image


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


@dataclass(frozen=True)
class Registry:
    server: str  # host:port
    username: str
    password: str
    image: str  # the test image's name in the registry, without the server
    #: a registries.conf for podman (CONTAINERS_REGISTRIES_CONF) that lets it talk HTTP to it
    registries_conf: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"docker-registry did not start:\n{log.read_text()}")
        time.sleep(0.05)


@pytest.fixture(scope="session", name="registry")
def registry_fixture(podman: Podman) -> Iterator[Registry]:
    if shutil.which("docker-registry") is None or shutil.which("htpasswd") is None:
        pytest.skip("docker-registry or htpasswd is missing (scripts/services/podman.sh install)")
    user, password, port = "robot", "registry-pa55-e2e", _free_port()
    with tempfile.TemporaryDirectory(prefix="openbai-registry-") as tmp:
        root = Path(tmp)
        htpasswd = subprocess.run(
            ["htpasswd", "-niB", user], input=password, capture_output=True, text=True, check=True
        )
        (root / "htpasswd").write_text(htpasswd.stdout)
        (root / "config.yml").write_text(
            "version: 0.1\n"
            "log: {level: warn}\n"
            f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}}}\n"
            f"http: {{addr: '127.0.0.1:{port}', secret: openbai-test}}\n"
            f"auth: {{htpasswd: {{realm: openbai-test, path: {root / 'htpasswd'}}}}}\n"
        )
        conf = root / "registries.conf"
        conf.write_text(f'[[registry]]\nlocation = "127.0.0.1:{port}"\ninsecure = true\n')
        log = root / "registry.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                ["docker-registry", "serve", str(root / "config.yml")], stdout=out, stderr=out
            )
        server, image = f"127.0.0.1:{port}", "team/private:1"
        env = {**os.environ, "CONTAINERS_REGISTRIES_CONF": str(conf)}
        auth = ["--authfile", str(root / "auth.json")]
        try:
            _wait_listening(port, proc, log)
            for argv, stdin in [
                (["login", *auth, "-u", user, "--password-stdin", server], password),
                (["push", "-q", *auth, podman.image, f"{server}/{image}"], None),
            ]:
                subprocess.run(
                    ["podman", *argv],
                    input=stdin,
                    env=env,
                    text=True,
                    capture_output=True,
                    check=True,
                    timeout=300,
                )
            yield Registry(server, user, password, image, conf)
        finally:
            proc.terminate()
            proc.wait(10)
            subprocess.run(["podman", "rmi", "-f", f"{server}/{image}"], capture_output=True)

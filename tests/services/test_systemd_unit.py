"""The systemd unit shipped for servers that must survive reboots (scripts/systemd/): valid
for systemd, its command serves, and, where systemd runs this machine, systemd starts it and
starts it again after a kill -9."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from azurite_fixture import free_port
from polling import wait_until

UNIT = Path(__file__).resolve().parents[2] / "scripts" / "systemd" / "openbai.service"
BAI = Path(sys.executable).parent / "bai"


def unit_for_here(home: Path, port: int) -> str:
    """The shipped unit with this checkout's bai, this user, a home and a port of the test."""
    lines = []
    for line in UNIT.read_text().splitlines():
        if line.startswith("ExecStart="):
            line = f"ExecStart={BAI} serve --host 127.0.0.1 --port {port}"
        elif line.startswith("User="):
            line = f"User={os.getuid()}"
        elif line.startswith("Environment=OPENBAI_HOME="):
            line = f"Environment=OPENBAI_HOME={home}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def settings(unit: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and line[0] != "#")


def answers(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/ui/", timeout=2)
    except urllib.error.HTTPError:
        return True  # an answer (a login page's redirect or 401 is one)
    except OSError:
        return False
    return True


def test_the_unit_restarts_the_server_and_stops_only_the_server() -> None:
    shipped = settings(UNIT.read_text())
    assert shipped["Restart"] == "always"
    assert shipped["KillMode"] == "process"  # a restart must not kill the jobs' runners
    assert shipped["WantedBy"] == "multi-user.target"
    # jobs run as the job user only under root, and their slots' groups need the service's
    assert shipped["User"] == "root" and shipped["Delegate"] == "yes"
    assert shlex.split(shipped["ExecStart"])[1:2] == ["serve"]


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / "openbai-test.service"
    unit.write_text(unit_for_here(tmp_path / "home", free_port()))
    verified = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True)
    assert verified.returncode == 0, verified.stderr.decode()


def test_the_units_command_serves(tmp_path: Path) -> None:
    port = free_port()
    unit = settings(unit_for_here(tmp_path / "home", port))
    name, value = unit["Environment"].split("=", 1)
    server = subprocess.Popen(
        shlex.split(unit["ExecStart"]),
        env={**os.environ, name: value, "BAI_SERVER": ""},
        stderr=subprocess.DEVNULL,
    )
    try:  # a loaded machine may take long to import the server
        wait_until(lambda: answers(port), "the server's answer", 90)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert server.returncode == 0  # SIGTERM (systemctl stop) is a clean stop


@pytest.fixture
def systemd_service(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """The unit installed under /run/systemd/system and started (needs systemd as PID 1)."""
    if Path("/proc/1/comm").read_text().strip() != "systemd":
        pytest.skip("systemd is not PID 1 here (a container): systemctl cannot run the unit")
    port = free_port()
    name = f"openbai-test-{port}.service"
    path = Path("/run/systemd/system") / name
    path.write_text(unit_for_here(tmp_path / "home", port))
    subprocess.run(["systemctl", "daemon-reload"], check=True)
    subprocess.run(["systemctl", "start", name], check=True)
    yield name, port
    subprocess.run(["systemctl", "stop", name], check=False)
    path.unlink()
    subprocess.run(["systemctl", "daemon-reload"], check=False)


def test_systemd_restarts_a_killed_server(systemd_service: tuple[str, int]) -> None:
    name, port = systemd_service
    wait_until(lambda: answers(port), "the server's answer")

    def main_pid() -> int:
        shown = subprocess.run(
            ["systemctl", "show", "-p", "MainPID", "--value", name], capture_output=True, text=True
        )
        return int(shown.stdout.strip() or 0)

    first = main_pid()
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: main_pid() not in (0, first), "a new server process", 60)
    wait_until(lambda: answers(port), "the restarted server's answer", 60)

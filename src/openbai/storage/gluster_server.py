"""A one-brick GlusterFS volume on this machine (Debian ``glusterfs-server``), for tests and
local development: what a job's ``mount -t glusterfs 127.0.0.1:/VOLUME`` reaches.

glusterd normally keeps its state in ``/var/lib/glusterd`` and listens on port 24007; this one
is given a volfile of its own, so everything is under ``<dir>`` (``glusterd.vol``, ``wd/``
its working directory, ``run/`` its socket and the brick's pid file, ``bricks/VOLUME`` the
brick, ``server.json`` address, port and pid) and it listens on 127.0.0.1 only, on port 24007:
the brick process glusterd starts fetches its volume file from that port whatever glusterd's
own is, so only one such server runs on a machine at a time.

The ``gluster`` CLI refuses a brick on ``127.0.0.1`` or ``localhost``, so the brick is named by
this machine's host name, which must resolve to a loopback address (it does in containers:
``/etc/hosts``); the volume is created with ``force`` because the brick is on the root
file system.

``python -m openbai.storage.gluster_server start|stop|env DIR`` serves tests and
``scripts/services/gluster.sh``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from xml.etree import ElementTree

import psutil

from openbai.errors import StorageError
from openbai.files import write_private
from openbai.storage import daemons
from openbai.storage.nfs_server import answers

GLUSTERD = "glusterd"
#: glusterd's port: its bricks always ask for their volume file there (only clients can be
#: given another, ``server-port``), so there is one such glusterd per machine
DEFAULT_PORT = 24007
_START_TIMEOUT = 60.0


@dataclass(frozen=True)
class GlusterState:
    host: str
    port: int
    volume: str
    brick_host: str
    pid: int = 0
    started_at: float = 0.0


def brick_host() -> str:
    """A name for this machine that the CLI accepts for a brick and that clients here reach."""
    name = socket.gethostname()
    try:
        address = socket.gethostbyname(name)
    except OSError as e:
        raise StorageError(f"host name {name!r} does not resolve: {e}", target="glusterd") from e
    if not ipaddress.ip_address(address).is_loopback:
        raise StorageError(
            f"host name {name!r} resolves to {address}, not a loopback address: the test volume's"
            " brick must be reachable at 127.0.0.1 (add it to /etc/hosts)",
            target="glusterd",
        )
    return name


def _volfile(directory: Path, host: str, port: int) -> str:
    return f"""# written by openbai (storage/gluster_server.py): a glusterd of its own
volume management
    type mgmt/glusterd
    option working-directory {directory / "wd"}
    option run-directory {directory / "run"}
    option glusterd-sockfile {directory / "run" / "glusterd.socket"}
    option transport-type socket
    option transport.socket.bind-address {host}
    option transport.socket.listen-port {port}
    option ping-timeout 0
    option event-threads 1
    option max-port 60999
end-volume
"""


class GlusterServer:
    """The glusterd whose state is in ``directory``, serving one volume of one brick."""

    def __init__(self, directory: Path):
        self.directory = directory

    @property
    def _state_file(self) -> Path:
        return self.directory / "server.json"

    def state(self) -> GlusterState | None:
        try:
            return GlusterState(**json.loads(self._state_file.read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None

    def brick(self, volume: str) -> Path:
        return self.directory / "bricks" / volume

    def is_running(self) -> bool:
        state = self.state()
        return state is not None and daemons.alive(state.pid, state.started_at)

    def start(self, volume: str = "gv0", host: str = "127.0.0.1") -> GlusterState:
        """Start glusterd on port 24007 and the volume's brick; create the volume the first
        time."""
        if shutil.which(GLUSTERD) is None:
            raise StorageError(
                "GlusterFS needs glusterfs-server: apt-get install glusterfs-server",
                target="glusterd",
            )
        previous = self.state()
        if previous is not None and daemons.alive(previous.pid, previous.started_at):
            return previous
        if previous is not None:
            host, volume = previous.host, previous.volume
        port = DEFAULT_PORT
        if answers(host, port):
            raise StorageError(
                f"port {port} of {host} is taken (another glusterd?): a brick asks glusterd for"
                " its volume file on that port, whatever port glusterd is given",
                target="glusterd",
            )
        bricks_host = brick_host()
        for sub in ("wd", "run", "bricks"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        conf = self.directory / "glusterd.vol"
        conf.write_text(_volfile(self.directory, host, port))
        with open(self.directory / "glusterd.out", "ab") as out:
            proc = subprocess.Popen(
                [GLUSTERD, "-N", "-f", str(conf), "-l", str(self._log), "-p", str(self._pidfile)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,  # outlives the command that started it
                cwd=self.directory,
            )
        state = GlusterState(
            host, port, volume, bricks_host, proc.pid, psutil.Process(proc.pid).create_time()
        )
        write_private(self._state_file, json.dumps(asdict(state)))
        try:
            self._wait(lambda: answers(host, port), proc, "glusterd did not start")
            created = not (self.directory / "wd" / "vols" / volume).is_dir()
            if created:
                brick = f"{bricks_host}:{self.brick(volume)}"
                self._cli("volume", "create", volume, brick, "force")
            self._cli("volume", "start", volume, "force")  # no-op for a started volume's brick
            self._wait(lambda: self._brick_online(volume), proc, "the brick did not start")
            if created:
                # the volume's root is the brick's: anyone may write there, as in /tmp (jobs
                # run as a user of their own)
                self.brick(volume).chmod(0o1777)
        except StorageError:
            self.stop()
            raise
        return state

    @property
    def _log(self) -> Path:
        return self.directory / "glusterd.log"

    @property
    def _pidfile(self) -> Path:
        return self.directory / "run" / "glusterd.pid"

    def _wait(self, ready: Callable[[], bool], proc: subprocess.Popen[bytes], what: str) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = self._log.read_text(errors="replace")[-2000:] if self._log.exists() else ""
                raise StorageError(f"{what}: {tail.strip()}", target="glusterd")
            time.sleep(0.1)

    def _cli(self, *args: str) -> str:
        result = subprocess.run(
            [
                "gluster",
                f"--glusterd-sock={self.directory / 'run' / 'glusterd.socket'}",
                "--mode=script",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise StorageError(
                f"gluster {' '.join(args)}: {(result.stderr or result.stdout).strip()}",
                target="glusterd",
            )
        return result.stdout

    def _brick_pids(self) -> list[int]:
        pids = []
        for pidfile in (self.directory / "run" / "vols").glob("*/*.pid"):
            with contextlib.suppress(OSError, ValueError):
                pids.append(int(pidfile.read_text().strip()))
        return pids

    def _brick_online(self, volume: str) -> bool:
        try:
            status = ElementTree.fromstring(self._cli("volume", "status", volume, "--xml"))
        except (StorageError, ElementTree.ParseError):
            return False
        return any(
            node.findtext("path") == str(self.brick(volume)) and node.findtext("status") == "1"
            for node in status.iter("node")
        )

    def state_host(self) -> str:
        state = self.state()
        return state.brick_host if state is not None else brick_host()

    def stop(self) -> None:
        """Stop the brick and glusterd (the volume and its files are kept)."""
        state = self.state()
        bricks = []
        for pid in self._brick_pids():
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                # only a brick of this server (pids are reused)
                if any(str(self.directory) in arg for arg in proc.cmdline()):
                    bricks.append(proc)
        for proc in bricks:
            with contextlib.suppress(psutil.Error):
                proc.terminate()
        psutil.wait_procs(bricks, timeout=10)
        for proc in bricks:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        if state is not None:
            daemons.stop(state.pid, state.started_at)

    def remove(self) -> None:
        """Stop it and delete its state and the brick."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or args[0] not in ("start", "stop", "env"):
        print(
            "usage: python -m openbai.storage.gluster_server start|stop|env DIR",
            file=sys.stderr,
        )
        return 2
    server = GlusterServer(Path(args[1]).absolute())
    if args[0] == "stop":
        server.stop()
        return 0
    if args[0] == "start":
        server.start()
    state = server.state()
    if state is None:
        print(f"no GlusterFS server in {args[1]}", file=sys.stderr)
        return 1
    print(f"OPENBAI_GLUSTER_STATE={server.directory}")
    print(f"OPENBAI_GLUSTER_HOST={state.host}")
    print(f"OPENBAI_GLUSTER_PORT={state.port}")
    print(f"OPENBAI_GLUSTER_VOLUME={state.volume}")
    print(f"OPENBAI_GLUSTER_BRICK={server.brick(state.volume)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A userspace NFS server for one file server: nfs-ganesha (Debian ``nfs-ganesha`` and
``nfs-ganesha-vfs``) exporting one directory over NFS v3 and v4.

Batch AI's file server was a VM exporting its RAID-0 data disks at ``/mnt/data``; here it is
one ganesha process per file server exporting ``<dir>/data`` under the same path. Its
state lives in ``<dir>``: ``ganesha.conf``, ``server.json`` (address, ports, pid and start
time), ``ganesha.log``. The process runs in its own session, so it outlives the command that
started it; :meth:`NfsServer.ensure_running` starts it again (same ports) after it went away,
for example after the machine restarted.

Starts and stops hold an exclusive ``flock`` on ``<dir>/lock``: API threads, the dispatcher
and several ``bai`` processes may all find a server gone at once, and two ganeshas started on
the same ports would leave one of them untracked (the loser's dead pid recorded, the winner
out of reach of ``stop``). The lock file is opened anew by every call, so threads of one
process exclude each other as processes do (a ``flock`` belongs to the open file).

ganesha registers its programs with rpcbind and will not start without one; rpcbind is
machine-wide (port 111), so it is started (``rpcbind -w``) only when none answers. Clients
here never need it: they are given the ports.

``python -m openbai.storage.nfs_server start|stop|env DIR [PORT]`` serves tests and
``scripts/services/nfs.sh``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from openbai.errors import BackendUnavailableError, StorageError
from openbai.files import write_private
from openbai.storage import daemons

#: where clients mount the export, as on Batch AI's file server VMs
EXPORT_PATH = "/mnt/data"
GANESHA = "ganesha.nfsd"
_START_TIMEOUT = 30.0
#: what a new server of a deleted one's name must not inherit (``data/`` and the logs stay)
_STATE = ("server.json", "ganesha.conf", "recovery", "run")


@dataclass(frozen=True)
class ServerState:
    host: str
    port: int
    mount_port: int
    pid: int = 0
    started_at: float = 0.0


def file_server_dir(home: Path, rg: str, ws: str, name: str) -> Path:
    """Where a file server's NFS server keeps its state and data (``data/`` is exported)."""
    return home / "file-servers" / rg / ws / name


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _taken_by(host: str, port: int) -> str | None:
    """Who holds ``host:port`` (``"pid N, NAME"``, or ``"another program"`` when it cannot be
    told), or None when the port is free to bind. Checked before ganesha starts: ganesha
    would die on it, and a port that answers is no proof that ganesha is the one answering."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
            return None
        except OSError:
            pass
    with contextlib.suppress(psutil.Error):
        for conn in psutil.net_connections("tcp"):
            address = conn.laddr  # () for a socket bound to nothing
            if conn.status == psutil.CONN_LISTEN and address and address[1] == port and conn.pid:
                return f"pid {conn.pid}, {psutil.Process(conn.pid).name()}"
    return "another program"


def _listens(pid: int, ports: set[int]) -> bool:
    """Whether process ``pid`` itself listens on every port of ``ports``."""
    try:
        conns = psutil.Process(pid).net_connections("tcp")
    except psutil.Error:
        return False
    return ports <= {c.laddr.port for c in conns if c.status == psutil.CONN_LISTEN}


def _config(data: Path, state: ServerState, recovery: Path) -> str:
    return f"""# written by openbai (storage/nfs_server.py): one file server's NFS export
NFS_CORE_PARAM {{
    NFS_Port = {state.port};
    MNT_Port = {state.mount_port};
    Bind_Addr = {state.host};
    Enable_NLM = false;
    Enable_RQUOTA = false;
    Protocols = 3, 4;
    # NFSv3 clients mount the export by its pseudo path too, as NFSv4 ones do
    Mount_Path_Pseudo = true;
}}
NFSV4 {{
    Graceless = true;
    RecoveryRoot = "{recovery}";
    Allow_Numeric_Owners = true;
    Only_Numeric_Owners = true;
}}
EXPORT_DEFAULTS {{
    Access_Type = RW;
    Squash = No_Root_Squash;
}}
EXPORT {{
    Export_Id = 1;
    Path = "{data}";
    Pseudo = "{EXPORT_PATH}";
    Access_Type = RW;
    Squash = No_Root_Squash;
    Protocols = 3, 4;
    Transports = TCP;
    SecType = sys;
    # AUTH_SYS takes the uid a client claims: only clients on a reserved port, which only
    # root binds, are believed (the mounts openbai makes as root); a job, which shares the
    # host's network as the job user, is refused
    PrivilegedPort = {str(os.geteuid() == 0).lower()};
    FSAL {{ Name = VFS; }}
}}
LOG {{
    Default_Log_Level = WARN;
    Components {{ DISP = FATAL; NFS_CB = FATAL; }}
}}
"""


def ensure_rpcbind() -> None:
    """Start rpcbind when none answers: ganesha refuses to start without one."""
    if answers("127.0.0.1", 111):
        return
    if shutil.which("rpcbind") is None:
        raise StorageError(
            "the NFS server needs rpcbind: apt-get install rpcbind", target="rpcbind"
        )
    subprocess.run(["rpcbind", "-w"], check=False, capture_output=True)
    deadline = time.monotonic() + 5
    while not answers("127.0.0.1", 111):
        if time.monotonic() > deadline:
            raise StorageError("rpcbind did not start", target="rpcbind")
        time.sleep(0.05)


class NfsServer:
    """The ganesha instance whose state is in ``directory``; exports ``directory/data``."""

    def __init__(self, directory: Path):
        self.directory = directory

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def _state_file(self) -> Path:
        return self.directory / "server.json"

    def state(self) -> ServerState | None:
        try:
            return ServerState(**json.loads(self._state_file.read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None

    def is_running(self) -> bool:
        state = self.state()
        return state is not None and daemons.alive(state.pid, state.started_at)

    @contextlib.contextmanager
    def _locked(self, *, create: bool = True) -> Iterator[bool]:
        """Hold the server's lock (see the module's docstring); yields False, holding nothing,
        when ``create`` is off and the server has no directory (nothing to stop)."""
        if create:
            self.directory.mkdir(parents=True, exist_ok=True)
        try:
            # O_CLOEXEC: ganesha, started under the lock, must not inherit (and keep) it
            fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            if create:
                raise
            yield False
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield True
        finally:
            os.close(fd)  # lets go of the lock

    def start(self, host: str = "127.0.0.1", port: int = 0, mount_port: int = 0) -> ServerState:
        """Start the server unless it runs (ports: the recorded ones, else those given, else
        free ones); its state once it listens on both."""
        _check_installed()
        with self._locked():
            return self._start(host, port, mount_port)

    def create(self, host: str) -> ServerState:
        """Start a new server on ``host`` and free ports: whatever a deleted server of the same
        directory recorded (address, ports) is dropped, its ``data/`` kept."""
        _check_installed()
        with self._locked():
            self._forget()
            return self._start(host, 0, 0)

    def _start(self, host: str, port: int, mount_port: int) -> ServerState:
        previous = self.state()
        if previous is not None and daemons.alive(previous.pid, previous.started_at):
            return previous
        if previous is not None:
            host, port, mount_port = previous.host, previous.port, previous.mount_port
        state = ServerState(host, port or free_port(host), mount_port or free_port(host))
        for what, number in (("NFS", state.port), ("mount", state.mount_port)):
            holder = _taken_by(host, number)
            if holder is not None:
                raise BackendUnavailableError(
                    f"the {what} port {host}:{number} is taken by {holder}; free it, or delete"
                    " the file server and create it again (a new one takes free ports, and the"
                    " data is kept)",
                    code="PortInUse",
                    target=f"{host}:{number}",
                )
        for sub in ("data", "recovery", "run"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        conf = self.directory / "ganesha.conf"
        conf.write_text(_config(self.data, state, self.directory / "recovery"))
        ensure_rpcbind()
        log = self.directory / "ganesha.log"
        with open(self.directory / "ganesha.out", "ab") as out:
            proc = subprocess.Popen(
                [
                    GANESHA,
                    "-F",
                    "-f",
                    str(conf),
                    "-L",
                    str(log),
                    "-p",
                    str(self.directory / "run/pid"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,  # outlives the command that started it
                cwd=self.directory,
            )
        state = ServerState(
            state.host,
            state.port,
            state.mount_port,
            proc.pid,
            psutil.Process(proc.pid).create_time(),
        )
        write_private(self._state_file, json.dumps(asdict(state)))
        deadline = time.monotonic() + _START_TIMEOUT
        # ganesha itself must listen: another program answering on a port proves nothing
        while not _listens(proc.pid, {state.port, state.mount_port}):
            if proc.poll() is not None or time.monotonic() > deadline:
                daemons.stop(proc.pid, state.started_at)
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise StorageError(
                    f"nfs-ganesha did not start on {host}:{state.port}: {tail.strip()}",
                    target="nfs-ganesha",
                )
            time.sleep(0.05)
        return state

    def ensure_running(self) -> ServerState:
        """The running server's state, started again (same ports) if it went away."""
        return self.start()

    def stop(self) -> None:
        with self._locked(create=False) as held:
            if held:
                self._stop()

    def _stop(self) -> None:
        state = self.state()
        if state is not None:
            daemons.stop(state.pid, state.started_at)

    def forget(self) -> None:
        """Stop it and drop its state (address, ports, configuration), keeping ``data/``: a
        server created later in this directory starts afresh on the address then configured."""
        with self._locked(create=False) as held:
            if held:
                self._forget()

    def _forget(self) -> None:
        self._stop()
        for name in _STATE:
            path = self.directory / name
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def remove(self) -> None:
        """Stop it and delete its state and data. The lock goes too: a caller waiting on it
        then finds no state and, if it starts the server, a new one (as after ``create``)."""
        with self._locked(create=False) as held:
            if held:
                self._stop()
                shutil.rmtree(self.directory, ignore_errors=True)


def _check_installed() -> None:
    if shutil.which(GANESHA) is None:
        raise StorageError(
            "file servers need nfs-ganesha: apt-get install nfs-ganesha nfs-ganesha-vfs",
            target="nfs-ganesha",
        )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or args[0] not in ("start", "stop", "env"):
        print(
            "usage: python -m openbai.storage.nfs_server start|stop|env DIR [PORT]", file=sys.stderr
        )
        return 2
    server = NfsServer(Path(args[1]).absolute())
    if args[0] == "stop":
        server.stop()
        return 0
    if args[0] == "start":
        server.start(port=int(args[2]) if len(args) > 2 else 0)
    state = server.state()
    if state is None:
        print(f"no NFS server in {args[1]}", file=sys.stderr)
        return 1
    print(f"OPENBAI_NFS_STATE={server.directory}")
    print(f"OPENBAI_NFS_HOST={state.host}")
    print(f"OPENBAI_NFS_PORT={state.port}")
    print(f"OPENBAI_NFS_MOUNT_PORT={state.mount_port}")
    print(f"OPENBAI_NFS_EXPORT={EXPORT_PATH}")
    print(f"OPENBAI_NFS_DATA={server.data}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""GlusterFS volumes of ``unmanagedFileSystems`` (``mount -t glusterfs HOST:/VOLUME``), mounted
with GlusterFS's own FUSE client (``glusterfs``, Debian ``glusterfs-client``).

Batch AI ran the user's mount command; here the client is started with arguments openbai
builds from the parsed command (``storage/nfs_command.py``), in the foreground (``-N``) so
that the mount's lifetime is a process openbai holds: its log is in a state directory of its
own, and ``unmount`` unmounts, waits for the client to exit and removes both. The client
writes through to the bricks (no write-back cache of openbai's), so a successful ``close`` in
the job is already stored; what the client could not store is returned to the job as an
error, as a kernel mount would.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from openbai.errors import MountError
from openbai.mounts.base import Log, Mount, Mounter
from openbai.mounts.table import mounts_under
from openbai.plan.job_plan import MountSpec
from openbai.plan.pids import pid_is_alive

CLIENT = "glusterfs"
#: glusterd's port when the mount command names no ``server-port``
DEFAULT_PORT = 24007
_MOUNT_TIMEOUT = 30.0
_EXIT_TIMEOUT = 30.0


def state_root() -> Path:
    """Where clients keep their logs, one directory per mount (``pid`` names its client)."""
    return Path(tempfile.gettempdir()) / "openbai-gluster-mounts"


def remove_stale_states(root: Path) -> None:
    """Delete the directories of clients that are gone (left by a killed node)."""
    for state in root.glob("gluster-*"):
        try:
            pid = int((state / "pid").read_text())
        except (OSError, ValueError):
            continue
        if not pid_is_alive(pid, until_reaped=True):
            shutil.rmtree(state, ignore_errors=True)


def describe(spec: MountSpec) -> str:
    where = "/".join(p for p in (spec.volume, spec.subpath) if p)
    return f"glusterfs {spec.options.get('host')}:/{where}"


def client_argv(spec: MountSpec, target: Path, log_file: Path) -> list[str]:
    options = spec.options
    argv = [
        CLIENT,
        "-N",  # stays in the foreground: the mount lives as long as this process
        f"--volfile-server={options['host']}",
        f"--volfile-server-port={int(options.get('port') or DEFAULT_PORT)}",
        f"--volfile-id={spec.volume}",
        f"--log-file={log_file}",
        "--log-level=WARNING",
    ]
    argv += [f"--volfile-server={backup}" for backup in options.get("backup_servers") or []]
    if spec.subpath:
        argv.append(f"--subdir-mount=/{spec.subpath}")
    if options.get("read_only"):
        argv.append("--read-only")
    return [*argv, str(target)]


def _is_mounted(path: Path) -> bool:
    return path.absolute() in mounts_under(path)


def _log_tail(log_file: Path, lines: int = 5) -> str:
    try:
        text = log_file.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


class GlusterMount(Mount):
    def __init__(self, spec: MountSpec, path: Path, process: subprocess.Popen[bytes], state: Path):
        super().__init__(spec, path)
        self.process = process
        self.state = state
        self._done = False

    def flush(self) -> None:
        """Nothing to do: the client has no write-back cache of openbai's (see the module)."""

    def unmount(self, *, synced: bool = False) -> None:
        if self._done:
            return
        self._done = True
        try:
            if _is_mounted(self.path):
                result = subprocess.run(
                    ["fusermount3", "-u", str(self.path)], capture_output=True, text=True
                )
                if result.returncode != 0:  # a straggler keeps a file open: detach it
                    subprocess.run(
                        ["fusermount3", "-u", "-z", str(self.path)], capture_output=True, text=True
                    )
            try:
                self.process.wait(timeout=_EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise MountError(
                    f"{describe(self.spec)}: the client did not exit after the unmount"
                ) from None
        finally:
            if self.process.poll() is not None:
                with contextlib.suppress(OSError):
                    self.path.rmdir()
                shutil.rmtree(self.state, ignore_errors=True)


class GlusterMounter(Mounter):
    name = "gluster"

    def mount(self, spec: MountSpec, target: Path, log: Log) -> Mount:
        if shutil.which(CLIENT) is None:
            raise MountError(
                f"cannot mount {describe(spec)}: this node has no GlusterFS client"
                " (apt-get install glusterfs-client)",
                code="AZFMountError",
            )
        if not Path("/dev/fuse").exists():
            raise MountError(
                f"cannot mount {describe(spec)}: this node has no /dev/fuse", code="AZFMountError"
            )
        root = state_root()
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        remove_stale_states(root)
        state = Path(tempfile.mkdtemp(prefix="gluster-", dir=root))
        log_file = state / "client.log"
        target.mkdir(parents=True, exist_ok=True)
        with open(state / "client.out", "ab") as out:
            process = subprocess.Popen(
                client_argv(spec, target, log_file),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,  # signals to the job's processes never reach it
            )
        (state / "pid").write_text(str(process.pid))
        mount = GlusterMount(spec, target, process, state)
        deadline = time.monotonic() + _MOUNT_TIMEOUT
        while not _is_mounted(target):
            if process.poll() is not None or time.monotonic() > deadline:
                reason = (
                    f"the client exited with code {process.returncode}"
                    if process.poll() is not None
                    else f"not mounted after {_MOUNT_TIMEOUT:g} s"
                )
                tail = _log_tail(log_file)
                with contextlib.suppress(MountError):
                    mount.unmount()
                if process.poll() is None:
                    process.kill()
                    process.wait()
                raise MountError(f"{describe(spec)}: {reason}. {tail}".strip())
            time.sleep(0.05)
        if not self._answers(target):
            tail = _log_tail(log_file)
            mount.unmount()
            raise MountError(f"{describe(spec)}: the volume does not answer. {tail}".strip())
        log(f"mounted {describe(spec)} at {target} with GlusterFS's client (pid {process.pid})")
        return mount

    @staticmethod
    def _answers(target: Path) -> bool:
        """The client mounts before it reaches a brick: a stat of the root shows whether it did
        (ENOTCONN otherwise)."""
        try:
            target.stat()
        except OSError:
            return False
        return True

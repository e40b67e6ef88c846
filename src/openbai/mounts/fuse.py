"""FUSE mounts of blob containers and file shares: one daemon process per mounted volume.

The filesystem is ``fusefs.py`` (generic over any backend that ``supports_writer``), served by
``fuse_daemon.py`` in a process of its own, so that a crash or a stuck request never takes
the node runner down, and a runner that dies does not leave a mount without its server.

Why mfusepy on libfuse3 and not pyfuse3: both were measured on these machines (see
``../shared/reference/platform-notes.md``): a passthrough filesystem read 0.37-0.6 GB/s with
mfusepy on libfuse3 against ~0.2 GB/s with pyfuse3's example, and the blob store (Azurite)
delivers at most ~0.45 GB/s, so only mfusepy leaves the store as the bottleneck. mfusepy is
also pure ctypes (no compiler or ``libfuse3-dev`` on the nodes) and runs operations on
libfuse's threads, which suits the blocking Azure SDK; pyfuse3 is trio-based, so every SDK
call would be pushed to a thread anyway.

Why not rclone (``rclone mount :azureblob:...``, Debian's 1.60): ``python -m bench blob_mount``
measures it in the same run. With its defaults it read one 1 GiB blob at 0.50-0.79x and
wrote one at 0.58-0.73x of the SDK, where this filesystem did 0.74-1.19x and 0.80-0.96x
(three runs on a loaded 2-core machine). And it lacks what jobs rely on: a file being written is no blob until it is closed (no periodic commit, so
``bai job file stream`` could not follow a running job's outputs on a blob container); in
its default mode a file opened for writing cannot seek and an existing file cannot be
appended to, and in the mode that allows both (``--vfs-cache-mode writes``) files are
uploaded after ``close`` in the background, where a failed upload is only logged: the job
could not be failed for it, nor held until its outputs are stored. It also needs
Azurite-only flags to reach Azurite (``--azureblob-use-emulator --azureblob-endpoint``).

Lifecycle: ``mount`` writes the daemon's config (0600; it holds the account key), starts the
daemon and waits until the kernel mount is up. ``flush`` asks the daemon (SIGUSR1) to flush
every written file and waits for its answer. ``unmount`` unmounts (``fusermount3 -u``; lazily
if a straggler keeps a file open), waits for the daemon to store everything still pending
and raises ``MountError`` naming what could not be saved; the mount point and the daemon's
state and cache directory are removed in every case.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from openbai.errors import MountError
from openbai.files import write_private
from openbai.mounts.base import Log, Mount, Mounter
from openbai.mounts.faults import read_faults
from openbai.mounts.fuse_daemon import DaemonConfig, Status
from openbai.mounts.table import mounts_under
from openbai.plan.job_plan import MountSpec
from openbai.plan.pids import pid_is_alive
from openbai.retry import retrying

#: seconds to wait for a daemon to mount
_MOUNT_TIMEOUT = 30.0
#: seconds a daemon gets past the flush timeout to write its status and exit
_EXIT_GRACE = 5.0


def state_root() -> Path:
    """Where mount daemons keep their state and cache directories."""
    return Path(tempfile.gettempdir()) / "openbai-mounts"


def remove_stale_states(root: Path) -> None:
    """Delete state directories whose daemon is gone (left by a killed node)."""
    if not root.is_dir():
        return
    for state in root.iterdir():
        status = Status.read(state)
        if status is None:
            if time.time() - state.stat().st_mtime > 600:
                shutil.rmtree(state, ignore_errors=True)
            continue
        if status.pid and not pid_is_alive(status.pid, until_reaped=True):
            shutil.rmtree(state, ignore_errors=True)


def daemon_argv(config_file: Path) -> list[str]:
    return [sys.executable, "-m", "openbai.mounts.fuse_daemon", str(config_file)]


def describe(spec: MountSpec) -> str:
    noun = "blob container" if spec.volume_kind == "blob" else "file share"
    where = "/".join(p for p in (spec.account, spec.volume, spec.subpath) if p)
    return f"{noun} {where}"


class _StillMounted(Exception):
    """fusermount3 could not unmount (busy); the message is what it said."""


class FuseMount(Mount):
    def __init__(self, spec: MountSpec, path: Path, process: subprocess.Popen[bytes], state: Path):
        super().__init__(spec, path)
        self.process = process
        self.state = state
        self.flush_timeout = 120.0
        self._done = False

    def flush(self, deadline: float | None = None) -> None:
        """Have the daemon store what was written so far; wait until ``deadline`` (monotonic)
        or the flush timeout."""
        if self._done:
            return
        before = Status.read(self.state)
        count = before.flushes if before else 0
        self.process.send_signal(signal.SIGUSR1)
        if deadline is None:
            deadline = time.monotonic() + self.flush_timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            status = Status.read(self.state)
            if status is not None and status.flushes > count:
                if status.errors:
                    raise MountError(f"{describe(self.spec)}: not stored: {status.errors[0]}")
                return
            time.sleep(0.05)
        raise MountError(f"{describe(self.spec)}: the mount daemon did not confirm a flush")

    def unmount(self, *, synced: bool = False) -> None:
        if self._done:
            return
        self._done = True
        try:
            if self._unmount_kernel(lazy=False):
                self._wait_for_daemon()
                return
            # still busy: a file stays open (the runner's execution log on this volume, or a
            # straggler). Store everything written so far and confirm it, then detach the
            # mount; the daemon serves the open files until they are closed, then exits.
            self._flush_until_stored(time.monotonic() + self.flush_timeout)
            self._unmount_kernel(lazy=True)
            try:
                self.process.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                (self.state / "abandoned").touch()  # the daemon removes its state itself
                return
            self._wait_for_daemon()
        finally:
            self.faults = read_faults(self.state)
            if self.process.poll() is not None:
                self._clean_up()

    def _flush_until_stored(self, deadline: float) -> None:
        """Flush until the daemon confirms everything stored; the flush timeout is one
        deadline for all tries (each try waits only for what is left of it)."""

        def daemon_runs(e: BaseException) -> bool:
            return isinstance(e, MountError) and self.process.poll() is None

        policy = retrying(
            retry_on=daemon_runs, within=self.flush_timeout, first_wait=1.0, max_wait=1.0
        )
        policy(self.flush, deadline)

    def _unmount_kernel(self, *, lazy: bool) -> bool:
        """Unmount; False when the mount stays busy (only without ``lazy``)."""
        try:
            policy = retrying(retry_on=_StillMounted, attempts=5, first_wait=0.2, max_wait=0.2)
            policy(self._unmount_once, lazy)
        except _StillMounted as e:
            if lazy:
                raise MountError(f"cannot unmount {self.path}: {e}") from None
            return False
        return True

    def _unmount_once(self, lazy: bool) -> None:
        if not _is_mounted(self.path):
            return
        flags = ["-z"] if lazy else []
        result = subprocess.run(
            ["fusermount3", "-u", *flags, str(self.path)], capture_output=True, text=True
        )
        if result.returncode != 0:
            raise _StillMounted(result.stderr.strip())

    def _wait_for_daemon(self) -> None:
        try:
            # the daemon keeps retrying until its own flush timeout, then reports
            code = self.process.wait(timeout=self.flush_timeout + _EXIT_GRACE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise MountError(
                f"{describe(self.spec)}: the mount daemon did not finish storing within"
                f" {self.flush_timeout:g} s"
            ) from None
        status = Status.read(self.state)
        if status is None or status.state != "unmounted":
            raise MountError(
                f"{describe(self.spec)}: the mount daemon died (exit code {code}); "
                f"files written through it may be incomplete. {_log_tail(self.state)}"
            )
        if status.errors:
            more = f" (and {len(status.errors) - 1} more)" if len(status.errors) > 1 else ""
            raise MountError(f"{describe(self.spec)}: not stored: {status.errors[0]}{more}")

    def _clean_up(self) -> None:
        with contextlib.suppress(OSError):
            self.path.rmdir()
        shutil.rmtree(self.state, ignore_errors=True)


def _is_mounted(path: Path) -> bool:
    return path.absolute() in mounts_under(path)


def _log_tail(state: Path, lines: int = 5) -> str:
    try:
        text = (state / "daemon.log").read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


class FuseMounter(Mounter):
    name = "fuse"
    needs_fuse = True

    def mount(self, spec: MountSpec, target: Path, log: Log) -> Mount:
        root = state_root()
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        remove_stale_states(root)
        state = Path(tempfile.mkdtemp(prefix="mount-", dir=root))
        config = DaemonConfig(spec, str(target), str(state), self.settings, os.getpid())
        config_file = state / "config.json"
        write_private(config_file, config.to_json())
        target.mkdir(parents=True, exist_ok=True)
        with open(state / "daemon.log", "ab") as daemon_log:
            process = subprocess.Popen(
                daemon_argv(config_file),
                stdin=subprocess.DEVNULL,
                stdout=daemon_log,
                stderr=daemon_log,
                start_new_session=True,  # signals to the job's processes never reach it
                env={**os.environ, "FUSE_LIBRARY_NAME": "fuse3"},
            )
        mount = FuseMount(spec, target, process, state)
        mount.flush_timeout = self.settings.flush_timeout
        try:
            self._wait_mounted(mount)
        except MountError:
            if process.poll() is None:
                process.kill()
                process.wait()
            with contextlib.suppress(MountError):
                mount._unmount_kernel(lazy=True)
            mount._clean_up()
            raise
        log(
            f"mounted {describe(spec)} at {target} with FUSE (openbai, pid {process.pid}):"
            f" reads stream in {self.settings.read_chunk // 2**20} MiB ranges, files being"
            f" written show in storage every {self.settings.commit_interval:g} s (durable"
            " once quiet, synced or closed)"
        )
        return mount

    @staticmethod
    def _wait_mounted(mount: FuseMount) -> None:
        deadline = time.monotonic() + _MOUNT_TIMEOUT
        while time.monotonic() < deadline:
            status = Status.read(mount.state)
            if status is not None and status.state == "failed":
                raise MountError(f"{describe(mount.spec)}: {'; '.join(status.errors)}")
            if status is not None and status.state == "mounted" and _is_mounted(mount.path):
                return
            if mount.process.poll() is not None:
                raise MountError(
                    f"{describe(mount.spec)}: the mount daemon exited with code"
                    f" {mount.process.returncode}. {_log_tail(mount.state)}"
                )
            time.sleep(0.02)
        raise MountError(f"{describe(mount.spec)}: not mounted after {_MOUNT_TIMEOUT:g} s")

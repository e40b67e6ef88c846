"""The daemons the storage backends start for a file server (nfs-ganesha, glusterd): each
known by its pid and start time, kept in its state file, since pids are reused."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import psutil


def alive(pid: int, started_at: float) -> bool:
    """Whether ``pid`` is still the daemon started at ``started_at``."""
    try:
        proc = psutil.Process(pid)
        return (
            pid > 0
            and proc.status() != psutil.STATUS_ZOMBIE
            and abs(proc.create_time() - started_at) < 1.0
        )
    except psutil.NoSuchProcess:
        return False


def stop(pid: int, started_at: float, grace: float = 10.0) -> None:
    """SIGTERM the daemon, SIGKILL it after ``grace`` seconds, and reap it if it is ours."""
    if not alive(pid, started_at):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive(pid, started_at):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)

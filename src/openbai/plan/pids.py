"""Whether a process known by its pid (a node runner, a job's task, a mount daemon) still
runs. Pids are recorded in files that outlive the processes, and the system reuses pids, so
a pid is checked together with the start time recorded with it."""

from __future__ import annotations

import psutil


def pid_is_alive(pid: int, started_at: float | None = None, *, until_reaped: bool = False) -> bool:
    """Whether ``pid`` still runs and is the same process (its start time matches).

    A zombie has ended. With ``until_reaped`` it still counts: its parent has yet to collect
    it, and may still read what it left behind (a mount daemon's status).
    """
    try:
        proc = psutil.Process(pid)
        if not until_reaped and proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return started_at is None or abs(proc.create_time() - started_at) < 1.0
    except psutil.NoSuchProcess:
        return False

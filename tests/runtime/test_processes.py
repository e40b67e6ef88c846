"""Waiting for a job's processes: the wait ends when one of them does, not at its timeout;
the start time recorded with a pid is the one a liveness check compares it with."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable

import psutil

from openbai.plan.pids import pid_is_alive
from openbai.runtime import processes


def test_waiting_ends_when_a_process_ends() -> None:
    quick = subprocess.Popen(["true"])
    slow = subprocess.Popen(["sleep", "30"])
    try:
        assert returns_without_its_timeout(lambda: processes.wait_any([slow, quick], timeout=3600))
        assert quick.poll() is not None and slow.poll() is None
    finally:
        slow.kill()
        slow.wait()


def test_waiting_for_a_process_already_reaped_returns_at_once() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    assert returns_without_its_timeout(lambda: processes.wait_any([proc], timeout=3600))


def returns_without_its_timeout(wait: Callable[[], None]) -> bool:
    """Whether ``wait`` returned well within its hour-long timeout: only an end can have woken
    it (a deadline of 30 s to return, not a measurement)."""
    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    waiter.join(30)
    return not waiter.is_alive()


def test_waiting_for_running_processes_ends_at_the_timeout() -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        processes.wait_any([proc], timeout=0.05)
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_a_recorded_start_time_is_psutils_and_tells_a_reused_pid() -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        started = processes.process_start_time(proc.pid)
        assert started == psutil.Process(proc.pid).create_time()
        assert pid_is_alive(proc.pid, started)
        # the same pid with another start is another process (a pid the system reused)
        assert not pid_is_alive(proc.pid, started - 5.0)
    finally:
        proc.kill()
        proc.wait()
    assert not pid_is_alive(proc.pid, started)

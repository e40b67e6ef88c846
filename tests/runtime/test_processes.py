"""Waiting for a job's processes: the wait ends when one of them does, not at its timeout."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable

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

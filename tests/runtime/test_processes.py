"""Waiting for a job's processes: the wait ends when one of them does, not at its timeout."""

from __future__ import annotations

import subprocess
import time

from openbai.runtime import processes


def test_waiting_ends_when_a_process_ends() -> None:
    quick = subprocess.Popen(["true"])
    slow = subprocess.Popen(["sleep", "30"])
    try:
        started = time.monotonic()
        while quick.poll() is None:
            processes.wait_any([slow, quick], timeout=60)
            assert time.monotonic() - started < 30  # not the timeout: the end woke it
        assert slow.poll() is None
    finally:
        slow.kill()
        slow.wait()


def test_waiting_for_a_process_already_reaped_returns_at_once() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    started = time.monotonic()
    processes.wait_any([proc], timeout=60)
    assert time.monotonic() - started < 30


def test_waiting_for_running_processes_ends_at_the_timeout() -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        processes.wait_any([proc], timeout=0.05)
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()

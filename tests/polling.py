"""Waiting for a condition with a deadline: what a test does instead of sleeping a fixed time
before an assert (too short on a loaded machine, wasted on an idle one)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], what: str, timeout: float = 30.0, interval: float = 0.05
) -> T:
    """Call ``condition`` until it returns something truthy and return that; past the deadline
    fail the test, naming ``what`` and the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout:g} s (last seen: {value!r})")
        time.sleep(interval)

"""What the hostile-job tests of host jobs (test_sandbox.py) and image jobs
(test_containers_sealed.py) share: the probes' commands and the check that nothing a probe
started is left running."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

#: what each probe prints when it could do what it must not: the tests look for it
LEAK = "LEAKED"

#: the marks of a module whose jobs are sealed off as a root installation seals them
SEALED = [
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed"),
    pytest.mark.skipif(os.getuid() != 0, reason="the job user is only switched under root"),
]

#: forks until the node slot's process limit stops it, then prints "stopped at N"; each child
#: sleeps a minute, so a child still there after the job is one the limit did not clean up
FORK_BOMB = (
    "python3 -c 'import os, time\nn = 0\ntry:\n while True:\n  if os.fork() == 0:\n"
    '   time.sleep(60); os._exit(0)\n  n += 1\nexcept OSError as e:\n print("stopped at", n)\''
)


def outside_tmp(bai_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """``bai_env`` with the installation outside /tmp (for a ``bai_env`` fixture): every task
    gets a fresh /tmp of its own, which would hide an installation there whether or not the
    sandbox hides it."""
    outside = Path(tempfile.mkdtemp(prefix="openbai-sandbox-", dir="/var/tmp"))
    yield {**bai_env, "OPENBAI_HOME": str(outside / "openbai")}
    shutil.rmtree(outside, ignore_errors=True)


def daemons(tag: int) -> str:
    """A background sleep, a setsid one and a double-forked one, all tagged."""
    return f"sleep {tag}1 & setsid sleep {tag}2 & (sleep {tag}3 &); (setsid bash -c 'sleep {tag}4 &' &); "


def leftovers(tag: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if tag in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


def assert_gone_within(tag: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while leftovers(tag):
        if time.monotonic() > deadline:
            raise AssertionError(f"still running {seconds} s after the job ended: {leftovers(tag)}")
        time.sleep(0.05)

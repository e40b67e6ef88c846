"""Device files of NVIDIA GPUs in /dev, as the driver makes them (character devices 195:N, and
195:255 for ``nvidiactl``), for tests of which of them a job's sandbox binds: this machine has
no GPU. A machine that has such files keeps them, and the test is skipped."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


@contextmanager
def nvidia_device_files(count: int) -> Iterator[None]:
    """``/dev/nvidia0`` to ``/dev/nvidia{count - 1}`` and ``/dev/nvidiactl``, removed after."""
    if any(name.startswith("nvidia") for name in os.listdir("/dev")):
        pytest.skip("this machine has NVIDIA device files: they are not replaced")
    if os.getuid() != 0:
        pytest.skip("device files are made by root")
    made = []
    try:
        for minor, name in [*((i, f"nvidia{i}") for i in range(count)), (255, "nvidiactl")]:
            os.mknod(f"/dev/{name}", 0o666 | stat.S_IFCHR, os.makedev(195, minor))
            made.append(f"/dev/{name}")
        yield
    finally:
        for path in made:
            os.unlink(path)

"""The kernel's read-ahead window of a FUSE mount (its backing device in ``/sys/class/bdi``).

The kernel reads a FUSE file ahead of the reader by at most ``read_ahead_kb`` of its mount's
backing device, 128 KiB by default, and a FUSE filesystem can only lower it (``max_readahead``
of the init reply). With 128 KiB a sequential reader waits for one 128 KiB request at a time,
each a round trip through the daemon; with a window of several MiB the kernel keeps several
1 MiB requests in flight, which our own read-ahead answers from chunks already fetched.
Raising it needs root (sysfs); without it the mount works, only slower.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("openbai.mount")

_SYSFS = Path("/sys/class/bdi")


def device_of(mountpoint: str, mountinfo: str) -> str | None:
    """The ``major:minor`` of the mount at ``mountpoint``, from ``/proc/self/mountinfo`` text
    (the last one listed: a mount over an earlier one at the same place hides it)."""
    device = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[4].encode().decode("unicode_escape") == mountpoint:
            device = fields[2]
    return device


def set_read_ahead(mountpoint: str, kib: int) -> bool:
    """Set the kernel read-ahead of the mount at ``mountpoint``; False if it cannot be set."""
    try:
        device = device_of(mountpoint, Path("/proc/self/mountinfo").read_text())
        if device is None:
            return False
        (_SYSFS / device / "read_ahead_kb").write_text(str(kib))
    except OSError as e:
        log.info("kernel read-ahead of %s stays at its default: %s", mountpoint, e)
        return False
    return True

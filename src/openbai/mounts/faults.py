"""The errors a mount returned to the job (``EIO``, ``ENOSPC``...), each with its file and time.

A program may ignore a failed ``write`` or ``close`` and exit 0; its output is then missing
bytes although the store took everything later. So the mount daemon appends every such error
to ``faults.jsonl`` in its state directory the moment it returns it, and the runner reads the
file after unmounting: the execution log says when each happened, and a failed write fails
the job (``OutputUploadFailed``, naming the files).
"""

from __future__ import annotations

import errno
import json
import os
import threading
import time
from pathlib import Path
from typing import NamedTuple

FILE_NAME = "faults.jsonl"
#: operations that only read: their failure loses no output (a failed lookup may be the
#: job creating a file, so it counts as a failed write)
READING = frozenset({"read", "readdir", "read-only open"})
#: faults kept in memory when the state directory cannot take them (its disk is full)
_MEMORY_LIMIT = 1000


class Fault(NamedTuple):
    at: float  # seconds since the epoch
    operation: str
    path: str  # in the volume
    errno: int
    message: str = ""

    @property
    def lost_output(self) -> bool:
        return self.operation not in READING

    @property
    def when(self) -> str:
        """The time as the execution log writes it (UTC)."""
        return time.strftime("%Y/%m/%d %H:%M:%S", time.gmtime(self.at))

    def describe(self) -> str:
        name = errno.errorcode.get(self.errno, str(self.errno))
        why = f": {self.message}" if self.message else ""
        return f"at {self.when} the job got {name} on {self.operation} of {self.path}{why}"


class FaultLog:
    """The daemon's side: append each fault as one JSON line, as it happens."""

    def __init__(self, state_dir: Path):
        # logging is loaded by the daemon only: the node runners that read the faults start
        # a Python for every Slurm job, where its import is ~4 ms
        import logging

        self._log = logging.getLogger("openbai.mount")
        self.path = state_dir / FILE_NAME
        self._lock = threading.Lock()
        self._unwritten: list[Fault] = []

    def record(self, fault: Fault) -> None:
        self._log.error("%s", fault.describe())
        with self._lock:
            pending = [*self._unwritten, fault]
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, "".join(json.dumps(f._asdict()) + "\n" for f in pending).encode())
                finally:
                    os.close(fd)
                self._unwritten = []
            except OSError:  # the state's disk is full: kept until a later write gets through
                self._unwritten = pending[-_MEMORY_LIMIT:]


def read_faults(state_dir: Path) -> list[Fault]:
    """The faults a daemon recorded (none if it recorded nothing)."""
    try:
        lines = (state_dir / FILE_NAME).read_text().splitlines()
    except OSError:
        return []
    faults = []
    for line in lines:
        try:
            faults.append(Fault(**json.loads(line)))
        except (ValueError, TypeError):  # a line cut short when the disk filled up
            continue
    return faults

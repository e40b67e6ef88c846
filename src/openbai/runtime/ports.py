"""The ports a node's tasks listen on (TensorFlow's servers, PyTorch's rendezvous): a block of
them, held by the node's runner for its life through a lock on the block's file in the host's
port directory. Jobs sharing a host (the slots of every local cluster, Slurm jobs on one node)
never get the same block; a runner that dies gives its block back with its lock."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from openbai.runtime.stopping import JobFailure

#: blocks lie below Linux's ephemeral range (32768-60999), where outgoing connections take
#: their ports: nothing but a job listens there
FIRST_PORT = 23000
PORTS_PER_BLOCK = 16
BLOCKS = (32768 - FIRST_PORT) // PORTS_PER_BLOCK


class PortBlock:
    """A block of :data:`PORTS_PER_BLOCK` ports from ``base``, this process's until closed
    (blocks are named by their first port: a preferred one off the grid overlaps no other)."""

    def __init__(self, base: int, fd: int):
        self.base = base
        self._fd = fd

    @classmethod
    def hold(cls, directory: Path, preferred: int) -> PortBlock:
        """The block from ``preferred`` (the plan's: Batch AI's 2222 on a node of its own),
        else the first one no other runner of this host holds."""
        # only the installation reaches it: a job that could open a block's file could lock
        # it, and take every block from the jobs after it
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        blocks = range(FIRST_PORT, FIRST_PORT + BLOCKS * PORTS_PER_BLOCK, PORTS_PER_BLOCK)
        for base in dict.fromkeys([preferred, *blocks]):
            fd = os.open(directory / str(base), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return cls(base, fd)
        raise JobFailure(
            "NoFreePorts",
            f"all {BLOCKS} blocks of ports of this host are held by running jobs ({directory})",
        )

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

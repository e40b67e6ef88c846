"""The mount interface: make one volume appear as a directory of a job, and take it away.

A :class:`Mounter` is chosen per storage backend (registry.py). ``unmount`` makes everything
written through the mount durable in storage before it returns, and raises ``MountError``
when it cannot: a job is not successful before its outputs are safe.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from openbai.mounts.faults import Fault
from openbai.mounts.settings import MountSettings
from openbai.plan.job_plan import MountSpec

#: where a mounter reports what it did, for the job's execution log
Log = Callable[[str], None]


class Mount(ABC):
    #: the node's own directory the mount stands for, where what the job writes lands
    #: directly (an embedded volume, linked); None where writes go through it to storage
    local_source: Path | None = None
    #: ``local_source`` as a folder openbai made and the names below it, which jobs write
    #: (so that it is reached following no link they put on the way: mounts/link.py)
    anchor: tuple[Path, tuple[str, ...]] | None = None

    def __init__(self, spec: MountSpec, path: Path):
        self.spec = spec
        self.path = path
        #: the errors the mount returned to the job, known once it is unmounted
        self.faults: list[Fault] = []

    @abstractmethod
    def flush(self) -> None:
        """Make what was written so far durable in storage."""

    @abstractmethod
    def unmount(self, *, synced: bool = False) -> None:
        """Flush, then remove the mount point; idempotent. ``synced``: the caller has just
        synced the file system of ``local_source`` (once for all of a job's mounts)."""


class Mounter(ABC):
    #: registry key, same as the storage backend's
    name: ClassVar[str]
    #: whether the mounter needs /dev/fuse (the copy fallback is used where it is missing)
    needs_fuse: ClassVar[bool] = False

    def __init__(self, settings: MountSettings | None = None):
        self.settings = settings or MountSettings()

    @abstractmethod
    def mount(self, spec: MountSpec, target: Path, log: Log) -> Mount:
        """Make the volume (or its sub-directory) appear at ``target``, which does not exist."""

"""Embedded volumes appear in a job as a symbolic link to their directory: no privileges,
no copy, and what the job writes is in the volume the moment it is written."""

from __future__ import annotations

import os
from pathlib import Path

from openbai.errors import MountError
from openbai.mounts.base import Log, Mount, Mounter
from openbai.plan.job_plan import MountSpec
from openbai.storage.atomic import sync_filesystems
from openbai.storage.base import VolumeKind
from openbai.storage.registry import backend_class


class LinkMount(Mount):
    def __init__(self, spec: MountSpec, path: Path, source: Path):
        super().__init__(spec, path)
        self.local_source: Path = source

    def flush(self) -> None:
        sync_filesystems([self.local_source])

    def unmount(self, *, synced: bool = False) -> None:
        if not synced:
            self.flush()
        if self.path.is_symlink():
            self.path.unlink()


class LinkMounter(Mounter):
    name = "local"

    def mount(self, spec: MountSpec, target: Path, log: Log) -> Mount:
        backend = backend_class(spec.backend).from_options(
            spec.account, VolumeKind(spec.volume_kind), spec.options
        )
        source = backend.local_path(spec.volume, spec.subpath)
        if source is None:
            raise MountError(f"volume {spec.volume!r} of {spec.account!r} has no local directory")
        if not backend.local_path(spec.volume, "") or not source.parent.exists():
            raise MountError(
                f"{spec.volume_kind} volume {spec.volume!r} of account {spec.account!r} does not exist"
            )
        source.mkdir(parents=True, exist_ok=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(source, target, target_is_directory=True)
        log(
            f"linked {spec.volume_kind} volume {spec.account}/{spec.volume}/{spec.subpath} at {target}"
        )
        return LinkMount(spec, target, source)

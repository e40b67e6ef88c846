"""A volume no node can mount (an ``unmanagedFileSystems`` command of a type openbai has no
client for): mounting it fails with the reason the planner recorded, so the job fails at
start with ``AZFMountError`` naming the command, as Batch AI's failed mount did."""

from __future__ import annotations

from pathlib import Path

from openbai.errors import MountError
from openbai.mounts.base import Log, Mount, Mounter
from openbai.plan.job_plan import MountSpec


class RefusedMounter(Mounter):
    name = "refused"

    def mount(self, spec: MountSpec, target: Path, log: Log) -> Mount:
        reason = str(spec.options.get("reason") or f"cannot mount {spec.account}")
        log(f"mounting {spec.relative_path} failed: {reason}")
        raise MountError(reason, code="AZFMountError")

"""Where a job's paths lie in storage.

A job names its stdout folder and output folders by node paths such as
``$AZ_BATCHAI_JOB_MOUNT_ROOT/logs``. To list and stream those files through storage (also
after the node is gone), the path is matched against the mounted volumes, as the az CLI's
``_is_on_mount_point`` did: ``logs`` is the relativeMountPath of a share, so the files are in
that share under the rest of the path.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import asdict, dataclass
from typing import Any

from openbai.plan.job_plan import asks_read_only
from openbai.storage.base import VolumeKind

JOB_MOUNT_ROOT = "AZ_BATCHAI_JOB_MOUNT_ROOT"
MOUNT_ROOT = "AZ_BATCHAI_MOUNT_ROOT"


@dataclass(frozen=True)
class VolumeLocation:
    account: str
    volume_kind: VolumeKind
    volume: str
    path: str

    def join(self, *parts: str) -> VolumeLocation:
        path = posixpath.join(self.path, *[p.strip("/") for p in parts if p]).strip("/")
        return VolumeLocation(self.account, self.volume_kind, self.volume, path)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VolumeLocation:
        return cls(data["account"], VolumeKind(data["volume_kind"]), data["volume"], data["path"])


@dataclass(frozen=True)
class MountedVolume:
    """A volume mounted at ``$<root>/<relative_path>``; ``subpath`` is the part mounted."""

    root: str
    relative_path: str
    account: str
    volume_kind: VolumeKind
    volume: str
    subpath: str = ""
    #: ``mountOptions`` (``ro`` makes it read-only)
    mount_options: str = ""

    @property
    def read_only(self) -> bool:
        return asks_read_only(self.mount_options)


_ROOT_REF = re.compile(r"^\$(?:\{(\w+)\}|(\w+))(/.*)?$")


def locate(template: str, mounts: list[MountedVolume]) -> VolumeLocation | None:
    """The storage location of ``template``, or None if it is not on a mounted volume."""
    found = mounted_at(template, mounts)
    if found is None:
        return None
    volume, inside = found
    return VolumeLocation(volume.account, volume.volume_kind, volume.volume, volume.subpath).join(
        inside
    )


def mounted_at(template: str, mounts: list[MountedVolume]) -> tuple[MountedVolume, str] | None:
    """The volume of ``mounts`` that ``template`` lies on (the deepest), and the path inside
    it; None if it lies on none."""
    match = _ROOT_REF.match(template.strip())
    if match is None:
        return None
    root = match.group(1) or match.group(2)
    rest = posixpath.normpath("/" + (match.group(3) or "")).strip("/")
    best: MountedVolume | None = None
    for m in mounts:
        if m.root != root:
            continue
        rel = m.relative_path.strip("/")
        if (rest == rel or rest.startswith(rel + "/")) and (
            best is None or len(rel) > len(best.relative_path)
        ):
            best = m
    if best is None:
        return None
    return best, rest[len(best.relative_path.strip("/")) :].strip("/")


def setup_task_suffix(subscription_id: str, rg: str, ws: str, cluster: str, uid: str) -> str:
    """Where under its ``stdOutErrPathPrefix`` a cluster's setup task writes its output."""
    return f"{subscription_id}/{rg}/workspaces/{ws}/clusters/{cluster}/{uid}"

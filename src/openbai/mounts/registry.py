"""Which mounter serves which storage backend, and the copy-mode fallback without FUSE.

Mounters are imported on first use. A mounter that ``needs_fuse`` is swapped for
:class:`~openbai.mounts.copy.CopyMounter` when FUSE cannot be used here (no ``/dev/fuse``, no
permission on it, no ``fusermount3``, or ``OPENBAI_DISABLE_FUSE=1``); the copy mounter writes
the reason into the job's execution log.
"""

from __future__ import annotations

import importlib
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from openbai.errors import MountError
from openbai.mounts.base import Mounter
from openbai.mounts.settings import MountSettings

#: storage backend key -> "module:Class" (keep sorted)
MOUNTERS: Mapping[str, str] = {
    "azure_blob": "openbai.mounts.fuse:FuseMounter",
    "gluster": "openbai.mounts.gluster:GlusterMounter",
    "local": "openbai.mounts.link:LinkMounter",
    "nfs": "openbai.mounts.fuse:FuseMounter",
    "refused": "openbai.mounts.refused:RefusedMounter",
    "smb": "openbai.mounts.fuse:FuseMounter",
}

COPY_MOUNTER = "openbai.mounts.copy:CopyMounter"


def fuse_unavailable(settings: MountSettings) -> str | None:
    """Why FUSE cannot be used on this node, or None when it can."""
    if settings.disable_fuse:
        return "FUSE is disabled (OPENBAI_DISABLE_FUSE=1)"
    if not Path("/dev/fuse").exists():
        return "this node has no /dev/fuse"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "no permission to use /dev/fuse"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is not installed (apt-get install fuse3)"
    return None


def fuse_available() -> bool:
    return fuse_unavailable(MountSettings.from_env()) is None


def _load(target: str) -> type[Mounter]:
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Mounter)):
        raise MountError(f"{target} is not a Mounter")
    return cls


def mounter_for(backend: str, settings: MountSettings | None = None) -> Mounter:
    """The mounter for volumes of ``backend``; settings default to the environment's."""
    settings = settings or MountSettings.from_env()
    target = MOUNTERS.get(backend)
    if target is None:
        raise MountError(f"no way to mount volumes of storage backend {backend!r}")
    cls = _load(target)
    if cls.needs_fuse:
        reason = fuse_unavailable(settings)
        if reason is not None:
            from openbai.mounts.copy import CopyMounter

            return CopyMounter(settings, reason=reason)
    return cls(settings)

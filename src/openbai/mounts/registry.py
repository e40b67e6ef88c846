"""Which mounter serves which storage backend; imported on first use."""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Mapping
from pathlib import Path

from openbai.errors import MountError
from openbai.mounts.base import Mounter

#: storage backend key -> "module:Class" (keep sorted)
MOUNTERS: Mapping[str, str] = {
    "local": "openbai.mounts.link:LinkMounter",
}


def fuse_available() -> bool:
    return Path("/dev/fuse").exists() and os.access("/dev/fuse", os.R_OK | os.W_OK)


@functools.cache
def mounter_for(backend: str) -> Mounter:
    target = MOUNTERS.get(backend)
    if target is None:
        raise MountError(f"no way to mount volumes of storage backend {backend!r}")
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    mounter: Mounter = cls()
    return mounter

"""Tunables of FUSE and copy mounts, read once from the runner's environment (its edge)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NamedTuple


class MountSettings(NamedTuple):
    #: seconds between commits of files still being written (they become visible in storage)
    commit_interval: float = 3.0
    #: seconds a directory listing or a file's attributes are reused before asking again
    listing_ttl: float = 3.0
    #: seconds unmount keeps retrying to store what was written before it gives up
    flush_timeout: float = 120.0
    #: seconds between uploads of new and changed files in copy mode
    copy_interval: float = 5.0
    #: bytes of one ranged read request, and how many of them may run ahead of a reader
    read_chunk: int = 8 * 1024 * 1024
    read_ahead: int = 8
    #: bytes the kernel reads ahead of a reader of a FUSE mount (0: the kernel's 128 KiB)
    kernel_read_ahead: int = 16 * 1024 * 1024
    #: files written through a blob mount get their Content-MD5 up to this size (bytes); the
    #: hashing was half of the mount's CPU writing a big file (blobfuse2's ``update-md5``
    #: is off by default, azcopy's ``--put-md5`` opt-in)
    md5_up_to: int = 8 * 1024 * 1024
    #: forced copy mode (``OPENBAI_DISABLE_FUSE=1``), as on a node without FUSE
    disable_fuse: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MountSettings:
        env = os.environ if environ is None else environ
        default = cls()

        def number(name: str, value: float) -> float:
            raw = env.get(f"OPENBAI_MOUNT_{name}")
            return float(raw) if raw else value

        return cls(
            commit_interval=number("COMMIT_INTERVAL", default.commit_interval),
            listing_ttl=number("LISTING_TTL", default.listing_ttl),
            flush_timeout=number("FLUSH_TIMEOUT", default.flush_timeout),
            copy_interval=number("COPY_INTERVAL", default.copy_interval),
            read_chunk=int(number("READ_CHUNK", default.read_chunk)),
            read_ahead=int(number("READ_AHEAD", default.read_ahead)),
            kernel_read_ahead=int(number("KERNEL_READ_AHEAD", default.kernel_read_ahead)),
            md5_up_to=int(number("MD5_UP_TO", default.md5_up_to)),
            disable_fuse=env.get("OPENBAI_DISABLE_FUSE", "") not in ("", "0"),
        )

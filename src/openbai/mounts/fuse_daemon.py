"""The process that serves one FUSE mount: ``python -m openbai.mounts.fuse_daemon CONFIG``.

Started by :class:`openbai.mounts.fuse.FuseMounter`. ``CONFIG`` (mode 0600, deleted as soon as
it is read: it holds the account's keys) is a :class:`DaemonConfig` as JSON. The daemon talks
back through ``status.json`` in its state directory (:class:`Status`):

- ``mounted`` once the kernel mount is up (the mounter waits for it);
- after ``SIGUSR1``: every file written so far is flushed and ``flushes`` goes up by one,
  with the paths that could not be stored in ``errors``;
- every error returned to the job (``EIO``, ``ENOSPC``...) is appended to ``faults.jsonl``
  as it happens (faults.py);
- when the mount goes away (``fusermount3 -u`` by the mounter, or by the daemon itself on
  ``SIGTERM`` or when the process that started it died): everything still pending is stored
  (retried until ``flush_timeout``), then ``unmounted`` with ``errors``, the cache directory
  is removed and the daemon exits 0, or 1 if anything could not be saved.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from openbai.errors import OpenBaiError
from openbai.files import write_private
from openbai.mounts.bdi import set_read_ahead
from openbai.mounts.faults import FaultLog
from openbai.mounts.settings import MountSettings
from openbai.plan.job_plan import MountSpec, plain
from openbai.storage.base import VolumeKind
from openbai.storage.registry import backend_class

log = logging.getLogger("openbai.mount")


@dataclass(frozen=True)
class DaemonConfig:
    spec: MountSpec
    mountpoint: str
    state_dir: str
    settings: MountSettings
    parent_pid: int

    def to_json(self) -> str:
        return json.dumps(plain(vars(self)))

    @classmethod
    def from_json(cls, text: str) -> DaemonConfig:
        raw: dict[str, Any] = json.loads(text)
        return cls(
            spec=MountSpec(**raw["spec"]),
            mountpoint=raw["mountpoint"],
            state_dir=raw["state_dir"],
            settings=MountSettings(**raw["settings"]),
            parent_pid=int(raw["parent_pid"]),
        )


@dataclass(frozen=True)
class Status:
    state: str  # starting | mounted | failed | unmounted
    flushes: int = 0
    errors: list[str] = field(default_factory=list)
    pid: int = 0

    def write(self, state_dir: Path) -> None:
        write_private(state_dir / "status.json", json.dumps(asdict(self)))

    @classmethod
    def read(cls, state_dir: Path) -> Status | None:
        try:
            return cls(**json.loads((state_dir / "status.json").read_text()))
        except (FileNotFoundError, ValueError):
            return None


def fuse_options(spec: MountSpec) -> dict[str, Any]:
    """The libfuse options of a mount (``-o``), as keyword arguments of mfusepy.FUSE."""
    return {
        "foreground": True,
        "fsname": f"openbai:{spec.account}/{spec.volume}",
        "subtype": "openbai",
        "hard_remove": True,  # unlink of an open file: no .fuse_hidden rename (a blob copy)
        "auto_cache": True,  # keep file pages cached while size and mtime are unchanged
        "attr_timeout": 1,
        "entry_timeout": 1,
        "negative_timeout": 1,
        **({"allow_other": True} if os.geteuid() == 0 else {}),
        # mountOptions "ro": the kernel refuses every change (EROFS) before it reaches us
        **({"ro": True} if spec.read_only else {}),
    }


def self_unmount(mountpoint: str) -> None:
    for argv in (["fusermount3", "-u", "-z", mountpoint], ["umount", "-l", mountpoint]):
        if shutil.which(argv[0]) and subprocess.run(argv, capture_output=True).returncode == 0:
            return


def keep_freed_memory() -> None:
    """Have glibc keep the memory the daemon frees for its next buffers, in one arena.

    A mount's writers hold runs of 8 MiB until their server has them on disk, then free them
    by the dozen; by default glibc gave such memory back to the kernel (trim, unmap) and the
    next runs were faulted in again, a zeroed page per 4 KiB: writing 1 GiB through an NFS
    mount, ~15% of the daemon's CPU. What stays mapped is the daemon's peak, not more."""
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:  # not glibc
        return
    m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8
    mallopt(m_trim_threshold, 1 << 30)
    mallopt(m_mmap_threshold, 32 << 20)  # glibc's largest: 8 MiB runs come from the heap
    mallopt(m_arena_max, 1)  # Python's GIL serializes the daemon's threads anyway


def serve(config: DaemonConfig) -> int:
    os.environ.setdefault("FUSE_LIBRARY_NAME", "fuse3")
    keep_freed_memory()
    from openbai.mounts.fusefs import VolumeFS, VolumeFUSE

    spec, settings, state_dir = config.spec, config.settings, Path(config.state_dir)
    cache_dir = state_dir / "cache"
    options = {**spec.options, "cache_dir": str(cache_dir), "md5_up_to": settings.md5_up_to}
    backend = backend_class(spec.backend).from_options(
        spec.account, VolumeKind(spec.volume_kind), options
    )
    try:
        if not backend.stat(spec.volume, "").is_dir:
            raise OpenBaiError(f"{spec.volume} is not a volume")
        if spec.subpath:
            backend.make_dir(spec.volume, spec.subpath)
    except OpenBaiError as e:
        Status("failed", errors=[e.message], pid=os.getpid()).write(state_dir)
        return 2
    fs = VolumeFS(backend, spec.volume, spec.subpath, settings)
    fs.on_fault = FaultLog(state_dir).record
    flushes = 0
    stop = threading.Event()
    flush_requested = threading.Event()

    def mounted() -> None:
        # init() runs before the kernel has the init reply, which may lower the read-ahead:
        # a stat answered through the mount proves the reply was taken.
        try:
            os.stat(config.mountpoint)
        except OSError as e:
            Status("failed", errors=[f"the mount does not answer: {e}"], pid=os.getpid()).write(
                state_dir
            )
            return
        if settings.kernel_read_ahead:
            set_read_ahead(config.mountpoint, settings.kernel_read_ahead // 1024)
        Status("mounted", pid=os.getpid()).write(state_dir)

    fs.on_mounted = lambda: threading.Thread(target=mounted, name="openbai-mounted").start()

    orphaned = threading.Event()

    def committer() -> None:
        nonlocal flushes
        while True:
            requested = flush_requested.wait(settings.commit_interval)
            if stop.is_set():
                return
            fs.commit_all(durable=requested)
            if requested:
                flush_requested.clear()
                flushes += 1
                Status("mounted", flushes, fs.errors(), os.getpid()).write(state_dir)
            # the process that mounted is gone once this one was handed to another parent
            if config.parent_pid and os.getppid() != config.parent_pid:
                log.warning("the process that mounted %s is gone: unmounting", config.mountpoint)
                orphaned.set()
                self_unmount(config.mountpoint)
                return

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGUSR1:
            flush_requested.set()
        else:
            threading.Thread(target=self_unmount, args=(config.mountpoint,)).start()

    signal.signal(signal.SIGUSR1, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    thread = threading.Thread(target=committer, name="openbai-commit", daemon=True)
    thread.start()
    try:
        VolumeFUSE(fs, config.mountpoint, **fuse_options(spec))
    except RuntimeError as e:
        log.error("FUSE ended with %s", e)
    stop.set()
    flush_requested.set()
    deadline = time.monotonic() + settings.flush_timeout
    thread.join(settings.flush_timeout)  # a commit may hang on the store: finish bounds it
    errors = fs.finish(deadline)
    Status("unmounted", flushes, errors, os.getpid()).write(state_dir)
    shutil.rmtree(cache_dir, ignore_errors=True)
    if orphaned.is_set() or (state_dir / "abandoned").exists():  # nobody reads the status
        with contextlib.suppress(OSError):
            os.rmdir(config.mountpoint)
        shutil.rmtree(state_dir, ignore_errors=True)
    return 1 if errors else 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m openbai.mounts.fuse_daemon CONFIG", file=sys.stderr)
        return 2
    path = Path(args[0])
    config = DaemonConfig.from_json(path.read_text())
    path.unlink()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("azure").setLevel(logging.WARNING)
    code = serve(config)
    # threads still waiting on the store (uploads past the flush timeout) must not hold the
    # exit: the status is written, the mounter waits for nothing else
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())

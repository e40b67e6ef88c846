"""Copy mode: where FUSE cannot be used, a volume is copied in and its changes copied back.

``mount`` downloads the volume (or its sub-directory) into the mount path before the job
starts. While the job runs, new and changed files are uploaded every ``copy_interval``
seconds (files modified in the last second are left for the next round, so a file is not
uploaded half-written when it can wait), files the job deleted are deleted in storage, and
``unmount`` does a last complete round, retried until ``flush_timeout``, before it removes
the local copy. Anything that could not be stored raises ``MountError``: the job fails.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from openbai.errors import MountError, NotFoundError, OpenBaiError, StorageError
from openbai.folders import FOLDER_FLAGS, descend
from openbai.mounts.base import Log, Mount, Mounter
from openbai.mounts.settings import MountSettings
from openbai.plan.job_plan import MountSpec
from openbai.retry import retrying
from openbai.storage.base import StorageBackend, VolumeKind
from openbai.storage.registry import backend_class
from openbai.storage.transfer import download_tree

#: (size, mtime in ns) of a local file, as last stored
Stamp = tuple[int, int]
#: a file of the copy, to store back: never through a link, never a FIFO's wait
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _describe(spec: MountSpec) -> str:
    noun = "blob container" if spec.volume_kind == "blob" else "file share"
    return f"{noun} {'/'.join(p for p in (spec.account, spec.volume, spec.subpath) if p)}"


def local_files(root: int) -> dict[str, Stamp]:
    """Every regular file below the folder ``root`` (a descriptor: the job may have moved
    the path to it since, and put a link there), by relative path, with its size and
    mtime; no link is followed."""
    found: dict[str, Stamp] = {}
    for directory, dirs, files, fd in os.fwalk(".", dir_fd=root):
        dirs.sort()
        for name in files:
            with contextlib.suppress(OSError):
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if stat.S_ISREG(st.st_mode):
                    rel = os.path.normpath(os.path.join(directory, name))
                    found[Path(rel).as_posix()] = (st.st_size, st.st_mtime_ns)
    return found


class CopyMount(Mount):
    def __init__(
        self,
        spec: MountSpec,
        path: Path,
        backend: StorageBackend,
        settings: MountSettings,
    ):
        super().__init__(spec, path)
        self.backend = backend
        self.settings = settings
        # the copy and the folder holding it, opened before the job ran (it owns the folders
        # on the way and may move them): what is stored back and removed is reached from here
        self._parent = os.open(path.parent, FOLDER_FLAGS)
        self._root = os.open(path.name, FOLDER_FLAGS, dir_fd=self._parent)
        self._stored = local_files(self._root)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._errors: dict[str, str] = {}
        self._thread = threading.Thread(target=self._loop, name="openbai-copy", daemon=True)
        self._done = False
        self._thread.start()

    def _remote(self, rel: str) -> str:
        return "/".join(p for p in (self.spec.subpath, rel) if p)

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.copy_interval):
            self._sync(settle=1.0)

    def _sync(self, *, settle: float) -> None:
        """Upload new and changed files (not those modified in the last ``settle`` s) and
        delete what the job deleted; failures are kept for the next round. A read-only
        volume's copy is never stored back (the sandbox binds it read-only, too)."""
        if self.spec.read_only:
            return
        with self._lock:
            now_ns = time.time_ns()
            current = local_files(self._root)
            for rel, stamp in current.items():
                if self._stored.get(rel) == stamp and rel not in self._errors:
                    continue
                if now_ns - stamp[1] < settle * 1e9:
                    continue
                self._attempt(rel, functools.partial(self._upload, rel, stamp))
            for rel in [r for r in self._stored if r not in current]:
                self._attempt(rel, functools.partial(self._delete, rel))

    def _attempt(self, rel: str, action: Callable[[], None]) -> None:
        try:
            action()
            self._errors.pop(rel, None)
        except OpenBaiError as e:
            self._errors[rel] = e.message

    def _upload(self, rel: str, stamp: Stamp) -> None:
        *folders, name = rel.split("/")
        try:
            folder = descend(self._root, folders)
            try:
                fd = os.open(name, _FILE_FLAGS, dir_fd=folder)
            finally:
                os.close(folder)
        except OSError as e:  # moved, or a link put in its place, since it was listed
            raise StorageError(f"{rel}: {e.strerror}", target=rel) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise StorageError(f"{rel}: not a file any longer", target=rel)
            # the file this descriptor is, whatever path now leads where it was
            self.backend.upload(self.spec.volume, self._remote(rel), Path(f"/proc/self/fd/{fd}"))
        finally:
            os.close(fd)
        self._stored[rel] = stamp

    def _delete(self, rel: str) -> None:
        with contextlib.suppress(NotFoundError):
            self.backend.delete(self.spec.volume, self._remote(rel))
        del self._stored[rel]

    def flush(self) -> None:
        self._sync(settle=0.0)
        if self._errors:
            rel, why = next(iter(self._errors.items()))
            raise MountError(f"{_describe(self.spec)}: {rel} not stored: {why}")

    def unmount(self, *, synced: bool = False) -> None:
        if self._done:
            return
        self._done = True
        self._stop.set()
        self._thread.join()
        pause = min(2.0, self.settings.flush_timeout / 10)
        policy = retrying(
            retry_on=MountError,
            within=self.settings.flush_timeout,
            first_wait=pause,
            max_wait=pause,
        )
        try:
            policy(self.flush)
        finally:
            os.close(self._root)
            shutil.rmtree(self.path.name, ignore_errors=True, dir_fd=self._parent)
            os.close(self._parent)


class CopyMounter(Mounter):
    name = "copy"

    def __init__(self, settings: MountSettings | None = None, *, reason: str = ""):
        super().__init__(settings)
        self.reason = reason

    def mount(self, spec: MountSpec, target: Path, log: Log) -> Mount:
        backend = backend_class(spec.backend).from_options(
            spec.account, VolumeKind(spec.volume_kind), spec.options
        )
        log(
            f"{self.reason}: copy mode for {_describe(spec)} at {target}: its files are"
            f" downloaded before the job, new and changed files are uploaded every"
            f" {self.settings.copy_interval:g} s and when the job ends"
        )
        target.mkdir(parents=True, exist_ok=True)
        try:
            backend.stat(spec.volume, "")
            report = download_tree(backend, spec.volume, spec.subpath, target)
        except NotFoundError as e:
            if spec.subpath and backend.volume_exists(spec.volume):
                report = None
            else:
                shutil.rmtree(target, ignore_errors=True)
                raise MountError(f"{_describe(spec)}: {e.message}") from e
        except OpenBaiError as e:
            shutil.rmtree(target, ignore_errors=True)
            raise MountError(f"{_describe(spec)}: download failed: {e.message}") from e
        if report is not None and not report.is_complete:
            shutil.rmtree(target, ignore_errors=True)
            failure = report.failures[0]
            raise MountError(
                f"{_describe(spec)}: {failure.path} could not be downloaded: "
                f"{failure.error.message}"
            )
        files = report.files_done if report is not None else 0
        log(f"copied {files} files of {_describe(spec)} to {target}")
        return CopyMount(spec, target, backend, self.settings)

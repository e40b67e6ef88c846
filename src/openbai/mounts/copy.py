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
import threading
import time
from collections.abc import Callable
from pathlib import Path

from openbai.errors import MountError, NotFoundError, OpenBaiError
from openbai.mounts.base import Log, Mount, Mounter
from openbai.mounts.settings import MountSettings
from openbai.plan.job_plan import MountSpec
from openbai.retry import retrying
from openbai.storage.base import StorageBackend, VolumeKind
from openbai.storage.registry import backend_class
from openbai.storage.transfer import download_tree

#: (size, mtime in ns) of a local file, as last stored
Stamp = tuple[int, int]


def _describe(spec: MountSpec) -> str:
    noun = "blob container" if spec.volume_kind == "blob" else "file share"
    return f"{noun} {'/'.join(p for p in (spec.account, spec.volume, spec.subpath) if p)}"


def local_files(root: Path) -> dict[str, Stamp]:
    """Every regular file under ``root`` by relative path, with its size and mtime."""
    found: dict[str, Stamp] = {}
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in files:
            full = Path(directory, name)
            with contextlib.suppress(OSError):
                st = full.lstat()
                if full.is_file() and not full.is_symlink():
                    found[full.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns)
    return found


class CopyMount(Mount):
    def __init__(
        self,
        spec: MountSpec,
        path: Path,
        backend: StorageBackend,
        stored: dict[str, Stamp],
        settings: MountSettings,
    ):
        super().__init__(spec, path)
        self.backend = backend
        self.settings = settings
        self._stored = stored
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
            current = local_files(self.path)
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
        self.backend.upload(self.spec.volume, self._remote(rel), self.path / rel)
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
            shutil.rmtree(self.path, ignore_errors=True)


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
        return CopyMount(spec, target, backend, local_files(target), self.settings)

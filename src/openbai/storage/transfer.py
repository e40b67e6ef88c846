"""Tree transfers between a local directory and a volume, written once on the primitives.

Files move in parallel (a thread pool). With ``skip_unchanged`` a file whose target already
has the same content is skipped, which makes transfers resumable: after a crash or Ctrl-C
a re-run skips what was finished, and partial files never become visible (targets are
replaced atomically). "Same content" means same size and then:

- if either side has a stored MD5 (small Azure blobs we uploaded, big ones sent with
  ``validate_content``), the local file's MD5 matches;
- otherwise the modification times are equal (to the microsecond). Both directions keep
  mtimes for this: the local backend's ``upload`` copies the source mtime (Azure's keeps
  it in a big blob's metadata), and ``download_tree`` sets each downloaded file's mtime to
  the source's. No hashing is done then, so re-running a local->local transfer of 10,000
  files costs 10,000 ``stat`` calls.

Local files are written atomically, and made durable once at the end of the transfer
rather than one fsync per file (``atomic.deferred_sync``). Between an embedded volume and
a local directory both ways go through ``local_tree.py`` (each folder opened once, the
copy in the kernel), on at most ``_LOCAL_WORKERS`` threads.

With ``dry_run`` nothing is written (no file, no folder, on either side): the same
planning and the same skip decision run, and the report lists in ``planned`` what a real
run would copy or skip, for ``--dryrun``.

Progress is reported through ``on_progress`` (called on the calling thread only) with
:class:`TransferEvent`: one ``planned`` first, then per file a ``bytes`` event followed by
``file_done`` or ``file_skipped``, or a single ``file_failed``. A failed file does not stop
the others; the returned :class:`TransferReport` lists the failures.
"""

from __future__ import annotations

import contextvars
import fnmatch
import hashlib
import os
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Literal, NamedTuple

from openbai.errors import NotFoundError, OpenBaiError, SpecError, StorageError
from openbai.storage.atomic import deferred_sync, is_partial_name
from openbai.storage.base import FileInfo, StorageBackend, blob_path, clean_path
from openbai.storage.local import LocalStorage, stat_info
from openbai.storage.local_tree import TreeReader, TreeWriter

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: threads of a local-to-local copy (measured: ``python -m bench upload --embedded-only``)
_LOCAL_WORKERS = 4

EventKind = Literal["planned", "bytes", "file_done", "file_skipped", "file_failed"]


@dataclass(frozen=True)
class TransferEvent:
    """One step of a transfer.

    - ``planned``: ``files_total`` and ``bytes_total`` of the whole transfer (sent first).
    - ``bytes``: ``nbytes`` more bytes are accounted for (copied or skipped as unchanged);
      the ``bytes`` events add up to ``bytes_total`` when no file fails.
    - ``file_done`` / ``file_skipped``: ``path`` was copied / was already there.
    - ``file_failed``: ``path`` failed with ``error``.

    ``path`` is relative to the tree being transferred; ``nbytes`` of a per-file event is
    that file's size.
    """

    kind: EventKind
    path: str = ""
    nbytes: int = 0
    files_total: int = 0
    bytes_total: int = 0
    error: OpenBaiError | None = None


@dataclass(frozen=True)
class TransferFailure:
    path: str
    error: OpenBaiError


@dataclass(frozen=True)
class PlannedFile:
    """A file of a dry run: ``unchanged`` ones a real run would skip, the others it would copy.

    ``source`` and ``destination`` are a local path and a path inside the volume (which is
    which depends on the direction); ``path`` is relative to the tree, as in events."""

    path: str
    source: str
    destination: str
    size: int
    unchanged: bool


@dataclass(frozen=True)
class TransferReport:
    """The outcome: ``bytes_done`` were copied, ``bytes_skipped`` were already in place.

    After a dry run, ``*_done`` is what would have been copied, and ``planned`` lists every
    file that was not a failure, in path order (empty after a real run)."""

    files_total: int
    files_done: int
    files_skipped: int
    files_failed: int
    bytes_total: int
    bytes_done: int
    bytes_skipped: int
    failures: tuple[TransferFailure, ...] = ()
    planned: tuple[PlannedFile, ...] = ()

    @property
    def is_complete(self) -> bool:
        return self.files_failed == 0


ProgressCallback = Callable[[TransferEvent], None]


@dataclass(frozen=True)
class _Item:
    rel: str  # path relative to the tree, for events
    local: Path
    remote: str  # path inside the volume
    source: FileInfo  # the side being copied from


class _Unreadable(NamedTuple):
    rel: str
    local: Path
    error: OSError


def upload_tree(
    backend: StorageBackend,
    volume: str,
    source_dir: Path,
    destination_path: str = "",
    *,
    pattern: str | None = None,
    workers: int = 8,
    skip_unchanged: bool = True,
    on_progress: ProgressCallback | None = None,
    dry_run: bool = False,
) -> TransferReport:
    """Upload the files under ``source_dir`` (or the one file it names) to ``destination_path``.

    ``pattern`` is an ``fnmatch`` pattern matched against each path relative to
    ``source_dir`` (``*`` also matches ``/``: ``*.png`` selects PNGs at any depth).
    With ``dry_run`` nothing is uploaded: the report's ``planned`` says what would be.
    """
    dest = blob_path(destination_path, field="destination_path")
    if isinstance(backend, LocalStorage):  # folders: a//b is a/b, as its listing spells it
        dest = clean_path(dest, field="destination_path")
    backend.stat(volume, "")  # the volume must exist: fail once, not once per file
    existing = _remote_index(backend, volume, dest) if skip_unchanged else {}
    found, unreadable = _local_files(source_dir, pattern)
    items = [_Item(rel, local, _join(dest, rel), stat_info(rel, st)) for rel, local, st in found]
    # an embedded volume: each folder opened once and no per-file resolution or fsync (not
    # for a dry run, which writes nothing)
    writer = (
        TreeWriter(backend, volume) if isinstance(backend, LocalStorage) and not dry_run else None
    )
    write = (
        # names checked as the backend's own upload checks them (no backslash, no NUL...)
        (lambda remote, local: writer.write(clean_path(remote, allow_root=False), local))
        if writer is not None
        else partial(backend.upload, volume)
    )

    def transfer(item: _Item) -> bool:
        target = existing.get(item.remote)
        if target is not None and _is_same(item.source, target, item.local):
            return False
        if dry_run:  # the name a real run's write would refuse is refused here too
            clean_path(item.remote, allow_root=False, keep_empty=True)
        else:
            write(item.remote, item.local)
        return True

    if writer is None:
        dry: _DryRun = "upload" if dry_run else None
        return _run(items, transfer, workers, on_progress, unreadable, dry)
    with writer:
        return _run(items, transfer, _local_workers(workers), on_progress, unreadable)


def download_tree(
    backend: StorageBackend,
    volume: str,
    source_path: str,
    target_dir: Path,
    *,
    pattern: str | None = None,
    workers: int = 8,
    skip_unchanged: bool = True,
    on_progress: ProgressCallback | None = None,
    dry_run: bool = False,
) -> TransferReport:
    """Download the files under ``source_path`` (or the one file it names) into ``target_dir``.

    ``pattern`` is matched against each path relative to ``source_path``, as in
    :func:`upload_tree`. With ``dry_run`` nothing is downloaded and ``target_dir`` need not
    exist (it is not made): the report's ``planned`` says what would be downloaded.
    """
    src = blob_path(source_path, field="source_path")
    items = [
        _Item(rel, target_dir / rel, info.path, info)
        for rel, info in _remote_files(backend, volume, src, pattern)
    ]

    if isinstance(backend, LocalStorage) and not dry_run:  # its TreeReader makes target_dir
        return _download_local(backend, volume, items, target_dir, workers, skip_unchanged,
                               on_progress)  # fmt: skip

    def transfer(item: _Item) -> bool:
        # names from the backend, checked before one becomes a local path (dry run or not)
        blob_path(item.rel, field="path", allow_root=False)
        if skip_unchanged and _is_there(item, _local_file(item.local)):
            return False
        if dry_run:
            return True
        backend.download(volume, item.remote, item.local)  # atomic in every backend
        if item.source.modified is not None:
            # set after the rename: a crash in between leaves a whole file with another
            # mtime, which a re-run checks by MD5 (or copies again), never a wrong skip
            mtime_ns = (item.source.modified - _EPOCH) // timedelta(microseconds=1) * 1000
            os.utime(item.local, ns=(mtime_ns, mtime_ns))
        return True

    return _run(items, transfer, workers, on_progress, dry_run="download" if dry_run else None)


def _download_local(
    backend: LocalStorage,
    volume: str,
    items: list[_Item],
    target_dir: Path,
    workers: int,
    skip_unchanged: bool,
    on_progress: ProgressCallback | None,
) -> TransferReport:
    """:func:`download_tree` from an embedded volume: each folder on either side opened once,
    the source's mtime set before the rename (``local_tree.TreeReader``)."""

    def transfer(item: _Item) -> bool:
        rel = clean_path(item.rel, field="path", allow_root=False)  # a file system's names
        if skip_unchanged and _is_there(item, reader.local_stat(rel)):
            return False
        reader.copy(item.remote, rel)
        return True

    with TreeReader(backend, volume, target_dir) as reader:
        return _run(items, transfer, _local_workers(workers), on_progress)


def _local_workers(requested: int) -> int:
    """Threads for a copy between two local trees: ``--max-connections`` is for the network;
    here more threads than cores only queue on the folders' locks in the kernel."""
    return max(1, min(requested, _LOCAL_WORKERS))


# -- planning ----------------------------------------------------------------------------
def _join(prefix: str, rel: str) -> str:
    return f"{prefix}/{rel}" if prefix else rel


def _matches(rel: str, pattern: str | None) -> bool:
    return pattern is None or fnmatch.fnmatchcase(rel, pattern)


def _local_files(
    source: Path, pattern: str | None
) -> tuple[list[tuple[str, Path, os.stat_result]], list[_Unreadable]]:
    """(relative path, file, its stat) under a local directory, or the file itself, sorted;
    and what could not be read there (a link in a loop, a folder it may not list), each a
    failure of its own, not the whole transfer's.

    One ``scandir`` per folder and one ``stat`` per file (symlinks followed, as ``cp -r``
    of a tree given by the user would read them)."""
    try:
        top = source.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise NotFoundError(f"{source}: no such file or directory", target="source_dir") from None
    if stat.S_ISREG(top.st_mode):
        return ([(source.name, source, top)] if _matches(source.name, pattern) else []), []
    if not stat.S_ISDIR(top.st_mode):
        raise NotFoundError(f"{source}: no such file or directory", target="source_dir")
    found = []
    unreadable: list[_Unreadable] = []
    folders = [("", str(source))]
    while folders:
        prefix, directory = folders.pop()
        try:
            listing = os.scandir(directory)
        except OSError as e:
            unreadable.append(_Unreadable(prefix.rstrip("/"), Path(directory), e))
            continue
        with listing as entries:
            for entry in entries:
                rel = prefix + entry.name
                try:
                    if entry.is_dir(
                        follow_symlinks=False
                    ):  # as os.walk: links to folders are not entered
                        folders.append((rel + "/", entry.path))
                        continue
                    if is_partial_name(entry.name) or not _matches(rel, pattern):
                        continue
                    st = entry.stat()
                except FileNotFoundError:  # vanished, or a dangling link
                    continue
                except OSError as e:  # a link in a loop
                    unreadable.append(_Unreadable(rel, Path(entry.path), e))
                    continue
                if stat.S_ISREG(st.st_mode):
                    found.append((rel, Path(entry.path), st))
    found.sort(key=lambda f: f[0])
    return found, sorted(unreadable)


def _remote_files(
    backend: StorageBackend, volume: str, src: str, pattern: str | None
) -> list[tuple[str, FileInfo]]:
    """(path relative to ``src``, entry) of the files under ``src``, or ``src`` itself."""
    top = backend.stat(volume, src)
    if not top.is_dir:
        return [(top.name, top)] if _matches(top.name, pattern) else []
    cut = len(top.path) + 1 if top.path else 0  # as the backend spells it (x//y or x/y)
    entries = ((info.path[cut:], info) for info in backend.list_dir(volume, src, recursive=True))
    return sorted((rel, info) for rel, info in entries if _matches(rel, pattern))


def _remote_index(backend: StorageBackend, volume: str, path: str) -> dict[str, FileInfo]:
    try:
        return {info.path: info for info in backend.list_dir(volume, path, recursive=True)}
    except NotFoundError:
        return {}


# -- deciding ----------------------------------------------------------------------------
def _is_same(source: FileInfo, target: FileInfo, local: Path) -> bool:
    """Whether ``target`` already holds ``source``'s content; ``local`` is the local side."""
    if source.is_dir or target.is_dir or source.size != target.size:
        return False
    stored = source.md5 or target.md5
    if stored is not None:
        return file_md5(local) == stored
    return source.modified is not None and source.modified == target.modified


def _is_there(item: _Item, there: os.stat_result | None) -> bool:
    """Whether a download's local file (``there``: its stat, None if it has none) already
    holds the item: the one test of both download paths and of their dry run."""
    return there is not None and _is_same(item.source, stat_info(item.rel, there), item.local)


def _local_file(path: Path) -> os.stat_result | None:
    """The stat of the regular file at ``path`` (links followed), None if there is none: what
    ``TreeReader.local_stat`` answers, by path (a dry run opens no folder)."""
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def file_md5(path: Path) -> str:
    """The hex MD5 of a local file, read in 1 MiB blocks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


# -- running -----------------------------------------------------------------------------
#: how long the calling thread lets finished files gather before it reports them
_REPORT_INTERVAL = 0.05


class _Workers:
    """``workers`` threads taking the items in order; outcomes queue up for the caller.

    One thread per connection, not one future per file: with 10,000 small files a future
    and a wake-up of the calling thread per file cost about as much CPU as the uploads.
    The calling thread instead wakes every ``_REPORT_INTERVAL`` and reports what finished.
    """

    def __init__(self, items: list[_Item], transfer: Callable[[_Item], bool], workers: int):
        self._items = iter(items)
        self._transfer = transfer
        self._lock = threading.Lock()
        self._finished = threading.Condition(self._lock)
        self._outcomes: list[tuple[_Item, bool | BaseException]] = []
        self._stopping = False
        # each thread runs in a copy of the caller's context: deferred_sync reaches it
        self._threads = [
            threading.Thread(
                target=contextvars.copy_context().run,
                args=(self._work,),
                name=f"openbai-transfer-{i}",
                daemon=True,
            )
            for i in range(min(workers, len(items)))
        ]
        self._running = len(self._threads)

    def __enter__(self) -> _Workers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Start nothing new (Ctrl-C, a callback error) and let running files finish."""
        with self._lock:
            self._stopping = True
        for thread in self._threads:
            thread.join()

    def _work(self) -> None:
        try:
            while True:
                with self._lock:
                    item = None if self._stopping else next(self._items, None)
                if item is None:
                    return
                outcome: bool | BaseException
                try:
                    outcome = self._transfer(item)
                except BaseException as e:  # reported on the calling thread, never lost
                    outcome = e
                with self._lock:
                    self._outcomes.append((item, outcome))
        finally:
            with self._lock:
                self._running -= 1
                self._finished.notify()

    def outcomes(self) -> Iterator[list[tuple[_Item, bool | BaseException]]]:
        """Batches of finished items, until every worker is done."""
        while True:
            with self._lock:
                if self._running:
                    self._finished.wait(_REPORT_INTERVAL)  # woken early by the last exit
                batch, self._outcomes = self._outcomes, []
                running = self._running
            if batch:
                yield batch
            elif not running:
                return


#: a dry run's direction (which side of an item is its source); None: a real run
_DryRun = Literal["upload", "download"] | None


def _run(
    items: list[_Item],
    transfer: Callable[[_Item], bool],
    workers: int,
    on_progress: ProgressCallback | None,
    unreadable: Sequence[_Unreadable] = (),
    dry_run: _DryRun = None,
) -> TransferReport:
    if workers < 1:
        raise SpecError(f"workers must be at least 1, got {workers}", target="workers")
    emit = on_progress or (lambda event: None)
    total = sum(item.source.size for item in items)
    emit(TransferEvent("planned", files_total=len(items) + len(unreadable), bytes_total=total))
    done = skipped = bytes_done = bytes_skipped = 0
    failures: list[TransferFailure] = []
    planned: list[PlannedFile] = []
    for rel, local, os_error in unreadable:
        unread = StorageError(f"{local}: {os_error.strerror or os_error}", target=rel)
        failures.append(TransferFailure(rel, unread))
        emit(TransferEvent("file_failed", rel, 0, error=unread))
    with deferred_sync(), _Workers(items, transfer, workers) as pool:
        for batch in pool.outcomes():
            for item, outcome in batch:
                size = item.source.size
                if isinstance(outcome, BaseException):
                    error = _error_of(outcome, item)
                    failures.append(TransferFailure(item.rel, error))
                    emit(TransferEvent("file_failed", item.rel, size, error=error))
                    continue
                emit(TransferEvent("bytes", item.rel, size))
                if dry_run is not None:
                    planned.append(_planned(item, dry_run, unchanged=not outcome))
                if outcome:
                    done, bytes_done = done + 1, bytes_done + size
                    emit(TransferEvent("file_done", item.rel, size))
                else:
                    skipped, bytes_skipped = skipped + 1, bytes_skipped + size
                    emit(TransferEvent("file_skipped", item.rel, size))
    failures.sort(key=lambda f: f.path)
    planned.sort(key=lambda p: p.path)
    return TransferReport(
        len(items) + len(unreadable), done, skipped, len(failures), total, bytes_done, bytes_skipped,
        tuple(failures), tuple(planned),
    )  # fmt: skip


def _planned(item: _Item, direction: _DryRun, *, unchanged: bool) -> PlannedFile:
    local, remote = str(item.local), item.remote
    source, destination = (local, remote) if direction == "upload" else (remote, local)
    return PlannedFile(item.rel, source, destination, item.source.size, unchanged)


def _error_of(error: BaseException, item: _Item) -> OpenBaiError:
    """The openbai error a transfer failed with (local OSErrors translated).

    Anything else is a bug or an interruption, not a failed file: it is raised.
    """
    if isinstance(error, OpenBaiError):
        return error
    if isinstance(error, OSError):
        kind = NotFoundError if isinstance(error, FileNotFoundError) else StorageError
        translated = kind(f"{item.local}: {error.strerror or error}", target=item.rel)
        translated.__cause__ = error
        return translated
    if isinstance(error, UnicodeEncodeError):  # a local name in no encoding: not a store's
        named = SpecError(
            f"{item.local!s}: the name is not valid UTF-8, which this store's names must be",
            target=item.rel,
        )
        named.__cause__ = error
        return named
    raise error

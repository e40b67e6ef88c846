"""Writing a file in place on a block store: written ranges staged as blocks, then committed.

Block stores (Azure block blobs) cannot change bytes of an object; they take *blocks*
(``stage``) and make an object of a list of them (``commit``), and a list may reuse blocks
already committed. :class:`BlockFileWriter` turns ``write(offset, data)`` into that:

- The file is a list of extents, each one block of the object. Written bytes go to a local
  *spill file* first (so memory stays small and a retry can re-read them) and make the
  extents they touch dirty; an extent is always staged whole.
- A dirty extent that reaches ``block_size`` is staged at once on the shared thread pool, so
  a file written sequentially is uploaded in parallel blocks while it is written.
- ``flush`` stages what is left (the partial tail too) and commits the list: what was written
  becomes visible. A short tail is merged with the previous short block before it is staged,
  so a log flushed every few seconds does not grow one block per flush.
- A commit discards every staged block it does not list (Azure's Put Block List does). So
  from the moment ``flush`` takes its snapshot until its commit returns, blocks of newer
  writes are held back (queued, not sent): a block staged in that window would be dropped
  by the store while this writer counts it as stored, and the next commit would fail.
- While a new (or emptied) file is written from its start without gaps, the MD5 of its bytes
  is kept up to date and stored with each commit (``Content-MD5``), so tools that skip
  unchanged files by MD5 see it; any other write drops it, and so does growing past
  ``md5_up_to`` bytes (hashing is most of a mount's CPU writing a big file; the vendor's own
  tools, blobfuse2 and azcopy, store no MD5 unless asked).
- Rewriting part of an existing object first fetches the blocks it touches (extents with no
  local bytes), so the untouched bytes of those blocks survive.

Only the storage calls (:class:`BlockTarget`) are backend code; this module imports no SDK.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import threading
import uuid
from abc import ABC, abstractmethod
from concurrent.futures import Executor, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from openbai.errors import OpenBaiError, StorageError
from openbai.storage.base import FileWriter

_MiB = 1024 * 1024
#: every block id we make has this length (a store may require one length per object)
ID_LENGTH = 48


class BlockTarget(ABC):
    """The storage calls behind one object; raise openbai storage errors only."""

    @abstractmethod
    def committed(self) -> tuple[int, list[tuple[str, int]]]:
        """(size, [(block id, length), ...]) of the object now; (0, []) if there is none.

        The list may be empty for a non-empty object stored without blocks.
        """

    @abstractmethod
    def read(self, offset: int, length: int) -> bytes:
        """Committed bytes of the object."""

    @abstractmethod
    def stage(self, block_id: str, data: bytes) -> None: ...

    @abstractmethod
    def commit(self, block_ids: list[str], *, md5: bytes | None = None) -> None:
        """Make the object the concatenation of these (staged or committed) blocks; ``md5``
        (of the whole object) is stored with it when given, and cleared when not.

        Staged blocks that are not listed are discarded by the store."""


@dataclass(eq=False)
class _Extent:
    start: int
    length: int
    #: the block holding these bytes (staged or committed); None while dirty
    block_id: str | None = None
    #: the bytes are in the spill file (False: only in the store, under block_id or not)
    local: bool = True
    staging: Future[None] | None = None

    @property
    def end(self) -> int:
        return self.start + self.length


def new_block_id() -> str:
    return f"{uuid.uuid4().hex}{uuid.uuid4().hex[:16]}"


class BlockFileWriter(FileWriter):
    """A FileWriter over a :class:`BlockTarget`; see the module docstring."""

    can_read: ClassVar[bool] = True

    def __init__(
        self,
        target: BlockTarget,
        pool: Executor,
        spill: Path,
        *,
        truncate: bool = False,
        block_size: int = 8 * _MiB,
        merge_size: int = 1 * _MiB,
        md5_up_to: int | None = None,
    ):
        self._target = target
        self._md5_up_to = md5_up_to
        self._pool = pool
        self._block_size = block_size
        self._merge_size = merge_size
        self._lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._extents: list[_Extent] = []
        self._size = 0
        self._version = 0  # bumped by every change
        self._committed_version = 0
        self._error: OpenBaiError | None = None
        #: while a commit is on its way: the extents it lists (only those may be staged)
        self._committing: set[_Extent] | None = None
        self._held: list[tuple[_Extent, str, Future[None]]] = []
        #: MD5 of bytes [0, _hashed) while the file is written sequentially from empty
        self._md5: hashlib._Hash | None = None
        self._hashed = 0
        if not truncate:
            self._load_existing()
        else:
            self._version = 1  # an emptied (or new) object must be committed
            self._md5 = hashlib.md5(usedforsecurity=False)
        spill.parent.mkdir(parents=True, exist_ok=True)
        self._spill_path = spill
        self._fd = os.open(spill, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)

    def _load_existing(self) -> None:
        size, blocks = self._target.committed()
        if size == 0:
            self._md5 = hashlib.md5(usedforsecurity=False)
        if (
            blocks
            and sum(n for _, n in blocks) == size
            and all(len(i) == ID_LENGTH for i, _ in blocks)
        ):
            start = 0
            for block_id, length in blocks:
                self._extents.append(_Extent(start, length, block_id, local=False))
                start += length
        elif size:  # stored without (our) blocks: fetched and re-staged when touched
            self._extents.append(_Extent(0, size, None, local=False))
        self._size = size

    @property
    def size(self) -> int:
        return self._size

    # -- writing ---------------------------------------------------------------------------
    def write(self, offset: int, data: bytes | memoryview) -> None:
        if not data:
            return
        end = offset + len(data)
        with self._lock:
            self._fetch_overlapping(offset, end)
            os.pwrite(self._fd, data, offset)
            self._hash(offset, data)
            extent = self._mark_dirty(offset, end)
            self._stage_full(extent)

    def _hash(self, offset: int, data: bytes | memoryview) -> None:
        if self._md5 is None:
            return
        end = offset + len(data)
        if offset == self._hashed == self._size and (
            self._md5_up_to is None or end <= self._md5_up_to
        ):
            self._md5.update(data)
            self._hashed = end
        else:  # a rewrite or a gap (the MD5 would need the whole file again), or too big
            self._md5 = None

    def truncate(self, size: int) -> None:
        with self._lock:
            if size != self._size:
                self._md5 = hashlib.md5(usedforsecurity=False) if size == 0 else None
                self._hashed = 0
            if size >= self._size:
                if size > self._size:
                    os.ftruncate(self._fd, max(size, os.fstat(self._fd).st_size))
                    self._mark_dirty(self._size, size)
                return
            cut = self._index_at(size)
            if cut < len(self._extents) and self._extents[cut].start < size:
                self._fetch(self._extents[cut])
            os.ftruncate(self._fd, size)
            kept = self._extents[:cut]
            straddling = self._extents[cut] if cut < len(self._extents) else None
            self._extents = kept
            self._size = size
            self._version += 1
            if straddling is not None and straddling.start < size:
                self._extents.append(_Extent(straddling.start, size - straddling.start))

    def _index_at(self, offset: int) -> int:
        """Index of the extent holding ``offset`` (len(extents) when at or past the end)."""
        starts = [e.start for e in self._extents]
        return max(bisect.bisect_right(starts, offset) - 1, 0) if self._extents else 0

    def _overlapping(self, start: int, end: int) -> tuple[int, int]:
        """[first, last) indexes of the extents overlapping [start, end)."""
        if not self._extents or start >= self._size:
            return len(self._extents), len(self._extents)
        first = self._index_at(start)
        last = first
        while last < len(self._extents) and self._extents[last].start < end:
            last += 1
        return first, last

    def _fetch_overlapping(self, start: int, end: int) -> None:
        first, last = self._overlapping(start, end)
        for extent in self._extents[first:last]:
            if not extent.local and not (start <= extent.start and extent.end <= end):
                self._fetch(extent)

    def _fetch(self, extent: _Extent) -> None:
        """Put an extent's stored bytes into the spill file (before part of it is rewritten)."""
        if extent.local:
            return
        for start in range(extent.start, extent.end, self._block_size):
            length = min(self._block_size, extent.end - start)
            data = self._target.read(start, length)
            if len(data) != length:
                raise StorageError(
                    f"object changed while being rewritten ({len(data)} of {length} bytes)"
                )
            os.pwrite(self._fd, data, start)
        extent.local = True

    def _mark_dirty(self, start: int, end: int) -> _Extent:
        """Replace the extents overlapping [start, end) by one dirty extent covering them."""
        first, last = self._overlapping(start, end)
        lo, hi = min(start, self._size), end  # a gap past the end holds zeros: dirty too
        if first < last:
            lo = min(lo, self._extents[first].start)
            hi = max(hi, self._extents[last - 1].end)
        if first > 0 and first == last == len(self._extents):  # appending at the end
            tail = self._extents[-1]
            if tail.local and tail.block_id is None and tail.staging is None and tail.end == lo:
                tail.length = hi - tail.start
                self._size = max(self._size, hi)
                self._version += 1
                return tail
        if first > 0:
            before = self._extents[first - 1]
            if (
                before.local
                and before.block_id is None
                and before.staging is None
                and before.end == lo
            ):
                first, lo = first - 1, before.start
        extent = _Extent(lo, hi - lo)
        self._extents[first:last] = [extent]
        self._size = max(self._size, hi)
        self._version += 1
        return extent

    def _stage_full(self, extent: _Extent) -> None:
        """Stage whole blocks of a dirty extent as soon as it has them."""
        if extent.length >= self._block_size:
            self._split_and_submit(extent, keep_rest=True)

    def _split_and_submit(self, extent: _Extent, *, keep_rest: bool) -> None:
        """Stage a dirty extent in blocks of at most block_size; with ``keep_rest`` a short
        last piece stays dirty (more may be appended to it)."""
        index = self._extents.index(extent)
        pieces = [
            _Extent(start, min(self._block_size, extent.end - start))
            for start in range(extent.start, extent.end, self._block_size)
        ]
        self._extents[index : index + 1] = pieces
        for piece in pieces:
            if not (keep_rest and piece.length < self._block_size):
                self._submit(piece)

    def _submit(self, extent: _Extent) -> None:
        block_id = new_block_id()
        done: Future[None] = Future()
        extent.staging = done
        if self._committing is not None and extent not in self._committing:
            self._held.append((extent, block_id, done))  # sent when the commit is over
        else:
            self._pool.submit(self._stage, extent, block_id, done)

    def _stage(self, extent: _Extent, block_id: str, done: Future[None]) -> None:
        try:
            self._stage_block(extent, block_id)
        finally:
            done.set_result(None)

    def _stage_block(self, extent: _Extent, block_id: str) -> None:
        try:
            data = os.pread(self._fd, extent.length, extent.start)
            if len(data) < extent.length:  # a sparse tail reads short: zeros
                data += bytes(extent.length - len(data))
            self._target.stage(block_id, data)
        except Exception as e:  # kept for flush to raise; the extent stays dirty (retried)
            error = e if isinstance(e, OpenBaiError) else StorageError(f"staging a block: {e!r}")
            with self._lock:
                self._error = error
                extent.staging = None
            return
        with self._lock:
            extent.block_id = block_id
            extent.staging = None

    # -- publishing ------------------------------------------------------------------------
    def flush(self) -> None:
        with self._commit_lock:
            with self._lock:
                if self._version == self._committed_version and self._error is None:
                    return
                self._error = None
                version = self._version
                self._prepare_commit()
                snapshot = list(self._extents)
                pending = [e.staging for e in snapshot if e.staging is not None]
                md5 = self._md5.digest() if self._md5 and self._hashed == self._size else None
                self._committing = set(snapshot)
            try:
                self._commit(snapshot, pending, md5)
            finally:
                with self._lock:
                    self._committing = None
                    held, self._held = self._held, []
                    for extent, block_id, done in held:
                        self._pool.submit(self._stage, extent, block_id, done)
            self._committed_version = version

    def _commit(
        self, snapshot: list[_Extent], pending: list[Future[None]], md5: bytes | None
    ) -> None:
        wait(pending)
        with self._lock:
            missing = [e for e in snapshot if e.block_id is None]
            error = self._error
        if missing or error is not None:
            raise StorageError(
                f"{len(missing)} blocks could not be stored"
                + (f": {error.message}" if error else "")
            ) from error
        self._target.commit([str(e.block_id) for e in snapshot], md5=md5)

    def _prepare_commit(self) -> None:
        """Stage every dirty extent (merging a short tail into a short block before it)."""
        index = 0
        while index < len(self._extents):
            extent = self._extents[index]
            if extent.block_id is None and extent.staging is None:
                self._fetch(extent)
                before = self._extents[index - 1] if index else None
                if (
                    before is not None
                    and before.local
                    and before.staging is None
                    and before.length < self._merge_size
                    and before.length + extent.length <= self._merge_size
                ):
                    merged = _Extent(before.start, before.length + extent.length)
                    self._extents[index - 1 : index + 1] = [merged]
                    index, extent = index - 1, merged
                pieces = -(-extent.length // self._block_size)
                self._split_and_submit(extent, keep_rest=False)
                index += pieces - 1
            index += 1

    def read(self, offset: int, length: int) -> bytes:
        """Bytes as written so far (local ones from the spill file, the rest from the store)."""
        with self._lock:
            end = min(offset + length, self._size)
            if offset >= end:
                return b""
            first, last = self._overlapping(offset, end)
            parts = []
            for extent in self._extents[first:last]:
                lo, hi = max(offset, extent.start), min(end, extent.end)
                if extent.local:
                    data = os.pread(self._fd, hi - lo, lo)
                    parts.append(data + bytes(hi - lo - len(data)))
                else:
                    parts.append(self._target.read(lo, hi - lo))
            return b"".join(parts)

    def close(self) -> None:
        self.flush()
        self.discard()

    def discard(self) -> None:
        """Release the spill file without publishing anything more."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
                self._spill_path.unlink(missing_ok=True)

"""A mount's writes to a file of an NFS export: written behind in runs, and kept until a
COMMIT shows that the server did not restart since they were sent (see
:class:`NfsFileWriter` and :class:`WriteVerifier`)."""

from __future__ import annotations

import contextlib
import errno
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from typing import ClassVar

from openbai.storage.base import FileWriter
from openbai.storage.nfs_client import NfsFile
from openbai.storage.nfs_errors import translate

log = logging.getLogger("openbai.storage")

#: bytes one call moves, in uploads and downloads as in a mount's writer (libnfs pipelines
#: the RPCs of one call)
CALL_BYTES = 8 * 1024 * 1024
#: bytes a mount's writer gathers into one call written behind
_RUN = CALL_BYTES
#: a write smaller than this is sent at once when nothing is in flight (a line of stdout)
_SMALL_WRITE = 64 * 1024
#: seconds a mount's writer fails at once after a call failed, before asking the server again
_QUIET = 5.0
#: bytes of a file a mount's writer keeps after sending them, until a COMMIT whose verifier
#: says the server did not restart meanwhile; past it, the writer waits for a COMMIT (which
#: stalls its writes); the COMMITs sent behind (``_COMMIT_BEHIND``) keep it from getting there
_KEEP_UNCOMMITTED = 256 * 1024 * 1024
#: the same for all the files of a backend (a mount) at once
_KEEP_ALL = 1024 * 1024 * 1024
#: bytes kept after which a COMMIT is sent behind, on another connection, while the writes go
#: on: what it covers is let go when it comes back, and its memory serves the next runs
_COMMIT_BEHIND = 32 * 1024 * 1024
#: small runs a writer keeps before joining them into one (``joined_runs``)
_SMALL_KEPT = 64
#: times a COMMIT's verifier may show a restart before the flush or upload gives up
RESTARTS = 3


class WriteVerifier:
    """The server's write verifier as last seen by this backend's COMMITs.

    An NFSv3 server acknowledges a WRITE before its data is on disk (UNSTABLE); only a COMMIT
    makes it durable, and its verifier (8 bytes, changed by every restart of the server) tells
    whether the server restarted since the writes: if so, what it had not committed may be
    gone and is sent again. The verifier known before a file's first write since its last
    COMMIT is that file's epoch; an epoch that is not the COMMIT's verifier means a restart
    (or, harmlessly, that another file's COMMIT had not yet shown an earlier one)."""

    def __init__(self) -> None:
        self._value: bytes | None = None
        self._lock = threading.Lock()

    def known(self, handle: NfsFile) -> bytes:
        """The verifier now, asked of the server (a COMMIT of ``handle``) the first time."""
        if self._value is None:
            value = handle.commit()
            with self._lock:
                self._value = self._value or value
        return self._value

    def committed(self, handle: NfsFile, epoch: bytes) -> bool:
        """COMMIT ``handle``; True if the server did not restart since ``epoch``."""
        return self.seen(handle.commit(), epoch)

    def seen(self, value: bytes, epoch: bytes) -> bool:
        """A COMMIT answered ``value``: True if the server did not restart since ``epoch``."""
        with self._lock:
            self._value = value
        return value == epoch


class KeptBytes:
    """The bytes all of a backend's writers keep to send again after a restart: one bound
    (``_KEEP_ALL``) for a whole mount, beside each file's own (``_KEEP_UNCOMMITTED``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0

    def count(self, change: int) -> None:
        with self._lock:
            self.total += change


def joined_runs(runs: list[tuple[int, bytearray]]) -> list[tuple[int, bytearray]]:
    """``runs`` (offset, bytes), in order, with each sequence of small runs that follow one
    another in the file joined into one; the others as they are."""
    joined: list[tuple[int, bytearray]] = []
    group: list[bytearray] = []  # small runs, one after another
    end = 0  # where the group ends in the file

    def close_group() -> None:
        if group:
            size = sum(map(len, group))
            joined.append((end - size, group[0] if len(group) == 1 else bytearray().join(group)))
            group.clear()

    for start, run in runs:
        if len(run) >= _SMALL_WRITE:
            close_group()
            joined.append((start, run))
            continue
        if group and start != end:
            close_group()
        group.append(run)
        end = start + len(run)
    close_group()
    return joined


class NfsFileWriter(FileWriter):
    """A file open on the server, written behind: contiguous writes are gathered into runs of
    up to ``_RUN`` bytes, each sent by one background call (libnfs pipelines its RPCs) while
    the next run fills, so a copy through a mount waits for the network once per run, not
    once per FUSE request. A small write arriving while nothing is in flight (a log line) is
    sent before ``write`` returns, so a job's stdout is followed live. ``flush`` sends what is
    left and COMMITs, only if anything was written since the last one.

    Nothing is lost silently: a run whose background write failed is kept and sent again by
    the next ``write``, ``read``, ``truncate`` or ``flush``, which raise while it still fails.
    The server acknowledges writes before they are on its disk: everything sent since the last
    COMMIT is kept and sent again when the COMMIT's verifier shows that the server restarted in
    between (:class:`WriteVerifier`); past ``_COMMIT_BEHIND`` a COMMIT goes on another
    connection while the writes go on, past ``_KEEP_UNCOMMITTED`` the writes wait for one.
    For ``_QUIET`` seconds after a failure every call fails at once with it, rather than each
    waiting out the server's timeout again: a job writing line by line to a server that went
    away got EIO after half a minute per line.
    """

    can_read: ClassVar[bool] = True

    def __init__(
        self,
        handle: NfsFile,
        where: str,
        behind: Executor,
        verifier: WriteVerifier,
        all_kept: KeptBytes,
        commit_elsewhere: Callable[[NfsFile], bytes],
    ):
        self._handle = handle
        self._where = where
        self._behind = behind
        self._verifier = verifier
        self._all_kept = all_kept
        self._commit_elsewhere = commit_elsewhere
        #: (``_kept`` and its sizes change in background writes and COMMITs too)
        self._kept_lock = threading.Lock()
        self._committing: Future[None] | None = None  # a COMMIT sent behind
        self._restart_seen = False  # by a COMMIT sent behind: the next write sends all again
        #: the verifier before the first write since the last COMMIT (None: nothing sent)
        self._epoch: bytes | None = None
        #: what was sent since the last COMMIT, in order: sent again if the server restarted
        self._kept: list[tuple[int, bytearray]] = []
        self._kept_bytes = 0
        self._small_kept = 0  # small runs kept since they were last joined
        self._lock = threading.Lock()  # writes come from FUSE threads, flushes from another
        self._start = 0  # the file offset of the run
        self._run = bytearray()
        self._sending: Future[None] | None = None
        #: runs written behind that failed (sent again first), and why
        self._failed: list[tuple[int, bytearray]] = []
        self._error: OSError | None = None
        self._quiet_until = 0.0  # (monotonic) until then, calls fail at once with _error
        self._unsynced = False  # written since the last COMMIT

    @contextlib.contextmanager
    def _call(self, *, wait: bool = True) -> Iterator[None]:
        """One call, holding the lock, its errors translated and remembered; after the run
        in flight unless ``wait`` is false (a write: the next run fills meanwhile)."""
        with self._lock, translate(self._where):
            if wait or (self._sending is not None and self._sending.done()):
                self._wait()
            if self._error is not None and time.monotonic() < self._quiet_until:
                raise self._error
            try:
                yield
            except OSError as e:
                self._error, self._quiet_until = e, time.monotonic() + _QUIET
                raise

    def write(self, offset: int, data: bytes | memoryview) -> None:
        with self._call(wait=False):
            if self._sending is None:
                self._resend_failed()
            if self._run and (
                offset != self._start + len(self._run) or len(self._run) + len(data) > _RUN
            ):
                self._send_behind()
            if not self._run:
                self._start = offset
            self._run += data
            if (
                self._kept_bytes >= _KEEP_UNCOMMITTED
                or self._restart_seen
                or (self._kept_bytes and self._all_kept.total >= _KEEP_ALL)
            ):
                self._resend_failed()
                self._commit()  # what is kept to send again stays bounded
            elif self._kept_bytes >= _COMMIT_BEHIND:
                self._commit_behind()
            if len(self._run) >= _RUN:
                self._send_behind()
            elif len(data) < _SMALL_WRITE and self._sending is None:
                self._send_now()

    def truncate(self, size: int) -> None:
        with self._call():
            self._drain()
            self._commit()  # nothing sent again after a restart may undo the truncation
            self._handle.truncate(size)

    def flush(self) -> None:
        with self._call():
            self._drain()
            self._commit()

    def publish(self) -> None:
        with self._call():
            self._drain()  # written is seen by every client; COMMIT is for the next flush

    def read(self, offset: int, length: int) -> bytes:
        with self._call():
            self._drain()
            return self._handle.pread(offset, length)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            with translate(self._where), contextlib.suppress(OSError):
                self._handle.close()
            with self._lock:
                self._wait()
                self._committed_behind()
                self._forget_kept()

    def discard(self) -> None:
        with self._lock:
            self._wait()
            self._committed_behind()
            self._run, self._failed, self._error = bytearray(), [], None
            self._forget_kept()
        with contextlib.suppress(OSError):
            self._handle.close()

    # -- called with the lock held ---------------------------------------------------------
    def _wait(self) -> None:
        """Wait for the run in flight (its failure is kept in ``_failed``, not raised)."""
        sending, self._sending = self._sending, None
        if sending is not None:
            sending.result()

    def _sending_from(self) -> None:
        """Note the epoch before the first write since the last COMMIT."""
        if self._epoch is None:
            self._epoch = self._verifier.known(self._handle)

    def _kept_for_restart(self, start: int, run: bytearray) -> None:
        self._all_kept.count(len(run))
        with self._kept_lock:
            self._kept.append((start, run))
            self._kept_bytes += len(run)
            self._unsynced = True
            if len(run) < _SMALL_WRITE:
                self._small_kept += 1
                if self._small_kept >= _SMALL_KEPT:
                    # a log's lines joined into a few buffers, not one object a line
                    # (growing one buffer line by line cost a copy of it at every reallocation)
                    self._kept, self._small_kept = joined_runs(self._kept), 0

    def _forget_kept(self) -> None:
        with self._kept_lock:
            self._all_kept.count(-self._kept_bytes)
            self._kept, self._kept_bytes, self._small_kept = [], 0, 0

    def _commit_behind(self) -> None:
        """Send a COMMIT of what is kept now on another connection, one at a time; the writes
        go on meanwhile (see ``_COMMIT_BEHIND``)."""
        if self._committing is not None and not self._committing.done():
            return
        self._committed_behind()
        with self._kept_lock:
            batch, size = self._kept, self._kept_bytes
            self._kept, self._kept_bytes, self._small_kept = [], 0, 0
        assert self._epoch is not None  # something was sent
        self._committing = self._behind.submit(self._commit_batch, batch, size, self._epoch)

    def _commit_batch(self, batch: list[tuple[int, bytearray]], size: int, epoch: bytes) -> None:
        """(In the background.) Let ``batch`` go if its COMMIT shows no restart since it was
        sent; else, or if it failed, it goes back in front of what is kept (sent before it),
        for the next COMMIT to send again."""
        failure: Exception | None = None
        try:
            durable = self._verifier.seen(self._commit_elsewhere(self._handle), epoch)
        except Exception as e:  # (an OSError, or no session could be made): all kept
            log.warning("committing %s behind failed (kept): %s", self._where, e)
            durable, failure = False, e
        if durable:
            self._all_kept.count(-size)
            return
        with self._kept_lock:
            self._kept[:0] = batch
            self._kept_bytes += size
            # a restart: the next write sends everything kept again (more COMMITs behind
            # would only show it again); a failure: the next COMMIT behind tries again
            self._restart_seen = self._restart_seen or failure is None

    def _committed_behind(self) -> None:
        """Wait for the COMMIT sent behind, if any."""
        committing, self._committing = self._committing, None
        if committing is not None:
            committing.result()

    def _commit(self) -> None:
        """COMMIT what was sent since the last one; if the server restarted meanwhile, send
        it again first (it may be gone) and COMMIT again."""
        self._committed_behind()
        if not self._unsynced or self._epoch is None:
            return
        for _ in range(RESTARTS):
            if self._verifier.committed(self._handle, self._epoch):
                break
            log.warning(
                "%s: the NFS server restarted before a COMMIT: sending %d bytes again",
                self._where,
                self._kept_bytes,
            )
            restarted = self._verifier.known(self._handle)
            for start, run in self._kept:
                self._handle.pwrite(start, run)  # failing: raised, all kept for the next try
            self._epoch = restarted
        else:
            raise OSError(errno.EIO, f"{self._where}: the NFS server kept restarting")
        self._forget_kept()
        self._epoch, self._unsynced, self._restart_seen = None, False, False

    def _send_behind(self) -> None:
        self._resend_failed()  # the runs before go first: this one may write over them
        self._sending_from()
        start, run = self._start, self._run
        self._run = bytearray()
        self._sending = self._behind.submit(self._write_run, start, run)

    def _write_run(self, start: int, run: bytearray) -> None:
        """A background write: a failure is kept for the next call to send again and raise."""
        try:
            self._handle.pwrite(start, run)
        except OSError as e:
            log.warning("writing %s behind failed (kept, sent again): %s", self._where, e)
            self._failed.append((start, run))
            self._error, self._quiet_until = e, time.monotonic() + _QUIET
        else:
            self._kept_for_restart(start, run)

    def _send_now(self) -> None:
        """Send the run before returning; a failure keeps it for the next call."""
        self._wait()
        self._sending_from()
        start, run = self._start, self._run
        self._run = bytearray()
        try:
            self._handle.pwrite(start, run)
        except OSError:
            self._failed.append((start, run))
            raise
        self._kept_for_restart(start, run)

    def _resend_failed(self) -> None:
        self._wait()
        while self._failed:
            self._sending_from()
            start, run = self._failed[0]
            self._handle.pwrite(start, run)  # still failing: raised, kept
            self._failed.pop(0)
            self._kept_for_restart(start, run)
        self._error = None

    def _drain(self) -> None:
        """Everything written so far is on the server (not yet committed)."""
        self._resend_failed()
        if self._run:
            self._send_now()

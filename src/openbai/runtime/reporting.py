"""How a node tells the job's other nodes and the executor where it stands: giving up
(so that nobody waits for it), and, on the first node, the job's outcome gathered from every
node's result, written last."""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
from pathlib import Path

from openbai.plan.results import JobError, Outcome, wait_until
from openbai.runtime.node import NodeContext

#: how long the first node of a stopped job waits for the other nodes' reports
REPORT_GRACE_SECONDS = 5.0
#: bytes a runner sets aside at its start, freed to report its end on a full disk
RESERVE_BYTES = 1024 * 1024


def disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


class SpaceReserve:
    """A file of :data:`RESERVE_BYTES` in the run directory, written while there is room.

    A runner whose disk fills up must still write its result (else the job is ``NodeLost``
    and the real error is never seen): deleting this file gives those few writes room.
    """

    def __init__(self, path: Path):
        self.path = path
        with contextlib.suppress(OSError):  # already full: nothing to set aside
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.posix_fallocate(fd, 0, RESERVE_BYTES)
            except OSError:
                os.write(fd, bytes(RESERVE_BYTES))
            finally:
                os.close(fd)

    def release(self) -> None:
        self.path.unlink(missing_ok=True)


def give_up(ctx: NodeContext) -> None:
    """The node failed or was stopped: mark it prepared (failed) and done, and on the first
    node the job finished, so that no node waits for this one."""
    if ctx.run.prepared(ctx.node.index) is None:
        ctx.run.mark_prepared(ctx.node.index, False)
    if ctx.is_master:
        ctx.run.mark_finished()
    elif ctx.run.done(ctx.node.index) is None:
        ctx.run.mark_done(ctx.node.index, -1)


def job_exit_code(codes: list[int | None]) -> int | None:
    """The job's exit code from its nodes' (the first node's first): the first a node's
    tasks failed with; -1 (a node stopped short, or lost) only where no task failed."""
    failed = [c for c in codes if c not in (0, None)]
    return next((c for c in failed if c != -1), failed[0] if failed else codes[0])


def job_outcome(ctx: NodeContext, mine: Outcome, stop_requested: threading.Event) -> Outcome:
    """The job's outcome (on the first node): its own, with every other node's errors and
    first failing exit code; a node that does not report is lost."""
    others = [n.index for n in ctx.plan.nodes[1:]]
    stopped_at: float | None = None

    def give_up_waiting() -> bool:
        """After a stop request, the other nodes (stopping too) get a while to report."""
        nonlocal stopped_at
        if not stop_requested.is_set():
            return False
        if stopped_at is None:
            stopped_at = time.monotonic()
        return time.monotonic() - stopped_at > REPORT_GRACE_SECONDS

    wait_until(
        lambda: all(ctx.run.node_result(k) is not None for k in others), stop=give_up_waiting
    )
    results = [mine]
    for k in others:
        result = ctx.run.node_result(k)
        if result is None:
            lost = JobError("NodeLost", f"node {ctx.plan.nodes[k].node_id} did not report its end")
            result = Outcome(-1, [lost])
        results.append(result)
    errors: list[JobError] = []
    for result in results:  # a node stopped because another ended says nothing of its own
        errors.extend(e for e in result.errors if e.code != "JobEnded" and e not in errors)
    codes = [r.exit_code for r in results]
    outcome = Outcome(job_exit_code(codes), errors, mine.start_time, time.time())
    if outcome.exit_code not in (0, None) and not outcome.errors:
        outcome.errors.append(JobError("JobFailed", "Job failed with non-zero exit code"))
    return outcome

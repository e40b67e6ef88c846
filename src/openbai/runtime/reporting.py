"""How a node tells the job's other nodes and the executor where it stands: giving up
(so that nobody waits for it), being alive (a heartbeat, so that nobody waits for a runner
that was killed), and, on the first node, the job's outcome gathered from every node's
result, written last."""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
from pathlib import Path

from openbai.plan.results import JobError, Outcome, RunDir, wait_until
from openbai.runtime.node import NodeContext

#: how long the first node of a stopped job waits for the other nodes' reports
REPORT_GRACE_SECONDS = 5.0
#: bytes a runner sets aside at its start, freed to report its end on a full disk
RESERVE_BYTES = 1024 * 1024
#: how often a runner of a multi-node job touches its heartbeat file
BEAT_SECONDS = 1.0
#: how long a node's heartbeat may stand still before the nodes waiting for it count its
#: runner gone: ten beats, well above a beat's delay on a loaded machine or a shared file
#: system's attribute cache (NFS: 3 s for a file that keeps changing)
LOST_AFTER_SECONDS = 10.0
#: how often a node looks at the heartbeats of those it waits for
LOOK_SECONDS = 0.5


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


class Heartbeat:
    """While a runner of a multi-node job lives, a thread touches its ``node-<k>.alive``.

    A runner killed outright (the OOM killer, an admin's kill -9) writes no result, and on
    Slurm its step goes on (``srun --kill-on-bad-exit=0``, so that the other nodes still
    flush their outputs and report), so the nodes waiting for it would wait until the wall
    clock. A runner on another host has no pid to look at, and asking Slurm would tie the
    runner to one executor: a heartbeat in the run directory, which every node shares, works
    everywhere.
    """

    def __init__(self, run: RunDir, node: int):
        self.run = run
        self.node = node
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)

    def start(self) -> None:
        self.run.beat(self.node)  # at once: a node that waits for this one sees it alive
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=BEAT_SECONDS)  # a beat stuck on a hung file system: leave it

    def _beat(self) -> None:
        while not self._stopped.wait(BEAT_SECONDS):
            with contextlib.suppress(OSError):  # the next beat may get through
                self.run.beat(self.node)


class Liveness:
    """Which of the nodes this one waits for have a runner that is gone: one whose heartbeat
    was seen and then stood still for :data:`LOST_AFTER_SECONDS`, on this node's clock.

    A node whose heartbeat was never seen is never lost: its runner may start seconds after
    this one (Slurm starts a step's tasks one host after the other), and one that never
    starts is Slurm's to report. Once lost, a node stays lost (its result still counts if
    it comes before the job's outcome is written).
    """

    def __init__(self, run: RunDir, nodes: list[int]):
        self.run = run
        self.nodes = nodes
        #: node: the heartbeat last seen, and when it was first seen (monotonic)
        self._seen: dict[int, tuple[int, float]] = {}
        self._looked: float | None = None
        self._lost: list[int] = []

    def lost(self) -> list[int]:
        now = time.monotonic()
        if self._looked is not None and now - self._looked < LOOK_SECONDS:
            return self._lost
        if self._looked is not None and now - self._looked > LOST_AFTER_SECONDS / 2:
            # this node did not look for a while (busy flushing outputs, or the whole job
            # was suspended): the others' runners may not have had a turn to beat either,
            # so each gets a whole while again, from now
            self._seen = {k: (beat, now) for k, (beat, _) in self._seen.items()}
        self._looked = now
        for k in self.nodes:
            if k in self._lost:
                continue
            beat = self.run.heartbeat(k)
            if beat is None:
                continue
            last = self._seen.get(k)
            if last is None or last[0] != beat:
                self._seen[k] = (beat, now)
            elif now - last[1] > LOST_AFTER_SECONDS:
                self._lost = sorted([*self._lost, k])
        return self._lost


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


def job_outcome(
    ctx: NodeContext,
    mine: Outcome,
    stop_requested: threading.Event,
    liveness: Liveness | None = None,
) -> Outcome:
    """The job's outcome (on the first node): its own, with every other node's errors and
    first failing exit code; a node that does not report (its runner gone, or not within a
    while of a stop request) is lost."""
    others = [n.index for n in ctx.plan.nodes[1:]]
    if liveness is None:
        liveness = Liveness(ctx.run, others)
    stopped_at: float | None = None

    def give_up_waiting() -> bool:
        """After a stop request (a signal, or the executor's through the run directory),
        the other nodes (stopping too) get a while to report."""
        nonlocal stopped_at
        if not stop_requested.is_set() and not ctx.run.stop_requested():
            return False
        if stopped_at is None:
            stopped_at = time.monotonic()
        return time.monotonic() - stopped_at > REPORT_GRACE_SECONDS

    def reported_or_lost() -> bool:
        unreported = [k for k in others if ctx.run.node_result(k) is None]
        return not unreported or set(unreported) <= set(liveness.lost())

    wait_until(reported_or_lost, stop=give_up_waiting)
    gone = liveness.lost()
    results = [mine]
    for k in others:
        result = ctx.run.node_result(k)
        if result is None:
            why = f"node {ctx.plan.nodes[k].node_id} did not report its end"
            if k in gone:
                why += f": its runner is gone (no heartbeat for {LOST_AFTER_SECONDS:g} s)"
            result = Outcome(-1, [JobError("NodeLost", why)])
        results.append(result)
    errors: list[JobError] = []
    for result in results:  # a node stopped because another ended says nothing of its own
        errors.extend(e for e in result.errors if e.code != "JobEnded" and e not in errors)
    codes = [r.exit_code for r in results]
    outcome = Outcome(job_exit_code(codes), errors, mine.start_time, time.time())
    if outcome.exit_code not in (0, None) and not outcome.errors:
        outcome.errors.append(JobError("JobFailed", "Job failed with non-zero exit code"))
    return outcome

"""Why a node's part of a job ends early: a failed step (:class:`JobFailure`), a terminate
request, the wall clock limit, or the job having ended on another node."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from openbai.plan.results import JobError
from openbai.runtime.node import NodeContext


class JobFailure(Exception):
    def __init__(self, code: str, message: str, exit_code: int = -1, **details: str):
        super().__init__(message)
        self.error = JobError(code, message, [{"name": k, "value": v} for k, v in details.items()])
        self.exit_code = exit_code


class Stopping:
    def __init__(self, ctx: NodeContext, started: float):
        self.ctx = ctx
        #: set by SIGTERM, or when the executor asked through the run directory
        self.requested = threading.Event()
        self.deadline = started + ctx.plan.max_wall_clock_seconds
        #: the nodes this one waits for whose runner is gone (reporting.Liveness, set by the
        #: runner of a job of several nodes)
        self.lost: Callable[[], list[int]] = list

    def interrupted(self) -> bool:
        """A terminate request, or the wall clock ran out."""
        if self.ctx.run.stop_requested():
            self.requested.set()
        return self.requested.is_set() or time.time() > self.deadline

    def should_stop(self, *, tasks_running: bool) -> bool:
        """Interrupted, or the job ended on another node while this one has nothing to run."""
        return self.interrupted() or (
            not self.ctx.is_master and self.ctx.run.is_finished() and not tasks_running
        )

    def reason(self) -> JobFailure:
        if self.requested.is_set():
            return JobFailure("JobTerminated", "the job was terminated by the user", 143)
        if time.time() > self.deadline:
            limit = self.ctx.plan.max_wall_clock_seconds
            return JobFailure(
                "JobWallClockTimeExceeded",
                f"the job ran longer than its maximum wall clock time ({limit:g} s)",
                143,
            )
        return JobFailure("JobEnded", "the job ended on another node")

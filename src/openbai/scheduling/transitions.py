"""The job state changes the dispatcher makes, as single SQL statements.

Each change is conditional on the state it starts from (a job is claimed only while queued,
ended only while not already ended), so that a terminate request or a delete that comes in
between wins, and many changes can share one transaction without reading rows first.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, literal, null, select, update
from sqlalchemy.orm import Session

from openbai.executors.base import JobRef
from openbai.plan.results import JobError, Outcome
from openbai.store.models import Job
from openbai.vocabulary import ExecutionState, states_before

QUEUED = ExecutionState.QUEUED


def queue(cluster_id: int | None) -> Select[Any]:
    """Ids of a cluster's jobs not yet handed to its executor, in queue order."""
    return (
        select(Job.id)
        .where(
            Job.cluster_id.is_(None) if cluster_id is None else Job.cluster_id == cluster_id,
            Job.execution_state == QUEUED,
            Job.executor_ref.is_(None),
        )
        .order_by(Job.priority.desc(), Job.id)
    )


def claim(s: Session, job_id: int, slots: list[int], now: datetime) -> bool:
    """Mark a queued job running on ``slots``; False if it is no longer queued."""
    done = s.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.execution_state.in_(states_before(ExecutionState.RUNNING)),
            Job.executor_ref.is_(None),
        )
        .values(
            execution_state=ExecutionState.RUNNING,
            execution_changed_at=now,
            start_time=now,
            nodes=slots,
        )
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def mark_running(s: Session, job_ids: list[int], now: datetime) -> None:
    """Jobs a queueing executor (Slurm) reports running."""
    s.execute(
        update(Job)
        .where(Job.id.in_(job_ids), Job.execution_state.in_(states_before(ExecutionState.RUNNING)))
        .values(execution_state=ExecutionState.RUNNING, execution_changed_at=now, start_time=now)
    )


def store_handle(s: Session, job_id: int, ref: JobRef, *, only_if_missing: bool = False) -> bool:
    """Store the executor's handle on a job; False if the job is gone (deleted)."""
    query = update(Job).where(Job.id == job_id)
    if only_if_missing:
        query = query.where(Job.executor_ref.is_(None))
    done = s.execute(query.values(executor_ref={"executor": ref.executor, "data": ref.data}))
    return bool(done.rowcount)  # type: ignore[attr-defined]


def terminate_requested(s: Session, job_ids: list[int]) -> set[int]:
    """Which of the jobs a user asked to terminate."""
    return set(s.scalars(select(Job.id).where(Job.id.in_(job_ids), Job.terminate_requested)))


def deallocate(s: Session, job_id: int, option: str, now: datetime) -> None:
    """Stop a running job whose node a resize takes away; ``option`` (``requeue`` or
    ``terminate``) says what its end becomes (:func:`finish`). A terminate asked before wins."""
    s.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.execution_state == ExecutionState.RUNNING,
            Job.terminate_requested.is_(False),
        )
        .values(
            execution_state=ExecutionState.TERMINATING,
            execution_changed_at=now,
            terminate_requested=True,
            deallocation=option,
        )
    )


def finish(
    s: Session, job_id: int, outcome: Outcome, error: JobError | None, now: datetime
) -> bool:
    """Record how a job ended (unless it already has); ``error`` is one of openbai's own.
    True when the job was queued again instead (its node was taken away, ``requeue``): its
    run directory is then the caller's to clear."""
    requeued = s.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.deallocation == "requeue",
            Job.execution_state == ExecutionState.TERMINATING,
        )
        .values(
            execution_state=ExecutionState.QUEUED,
            execution_changed_at=now,
            start_time=None,
            nodes=[],
            executor_ref=null(),  # SQL NULL, which the queue looks for (None is JSON's null)
            terminate_requested=False,
            deallocation=None,
        )
    )
    if requeued.rowcount:  # type: ignore[attr-defined]
        return True
    taken = s.scalar(select(Job.deallocation).where(Job.id == job_id)) == "terminate"
    errors: list[dict[str, Any]] = [
        {"code": e.code, "message": e.message, "details": e.details or None}
        for e in [*outcome.errors, *([error] if error is not None else [])]
        # not the user's terminate: the resize's
        if not (taken and e.code == "JobTerminated")
    ]
    if taken:
        errors.insert(
            0,
            {
                "code": "JobTerminated",
                "message": "the job's node was taken away by a resize of its cluster"
                " (nodeDeallocationOption terminate)",
                "details": None,
            },
        )
    succeeded = outcome.exit_code == 0 and not errors
    end = datetime.fromtimestamp(outcome.end_time, UTC) if outcome.end_time else now
    s.execute(
        update(Job)
        .where(Job.id == job_id, Job.execution_state.in_(states_before(ExecutionState.FAILED)))
        .values(
            execution_state=ExecutionState.SUCCEEDED if succeeded else ExecutionState.FAILED,
            execution_changed_at=now,
            exit_code=outcome.exit_code,
            errors=errors,
            end_time=end,
            # a job that never ran starts when it ends
            start_time=func.coalesce(Job.start_time, literal(end, Job.start_time.type)),
        )
    )
    return False

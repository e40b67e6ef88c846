"""The job vocabulary that the server, the dispatcher and the node runner share: execution
states and how they may change, scheduling priorities, provisioning states, and where a job's
stdout/stderr and outputs go below their volumes' prefixes.

Standard library only: the node runner imports it.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from enum import StrEnum


class ExecutionState(StrEnum):
    """A job's ``executionState``, as Batch AI named them."""

    QUEUED = "queued"
    RUNNING = "running"
    TERMINATING = "terminating"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


#: tuples rather than sets: SQL ``IN`` takes them as they are, and their order is stable
FINAL_STATES: tuple[ExecutionState, ...] = (ExecutionState.SUCCEEDED, ExecutionState.FAILED)
#: a job not yet ended (a cluster or workspace with such jobs is busy)
ACTIVE_STATES: tuple[ExecutionState, ...] = (
    ExecutionState.QUEUED,
    ExecutionState.RUNNING,
    ExecutionState.TERMINATING,
)
#: a job that holds nodes: started and not ended
ON_NODES: tuple[ExecutionState, ...] = (ExecutionState.RUNNING, ExecutionState.TERMINATING)

#: the changes a job's state may go through. A queued job may end without running (its
#: plan failed, it was terminated, or a queueing executor saw it end before it was seen
#: running); an ended job never changes again.
TRANSITIONS: Mapping[ExecutionState, frozenset[ExecutionState]] = {
    ExecutionState.QUEUED: frozenset(
        {
            ExecutionState.RUNNING,
            ExecutionState.TERMINATING,
            ExecutionState.SUCCEEDED,
            ExecutionState.FAILED,
        }
    ),
    ExecutionState.RUNNING: frozenset(
        {ExecutionState.TERMINATING, ExecutionState.SUCCEEDED, ExecutionState.FAILED}
    ),
    ExecutionState.TERMINATING: frozenset({ExecutionState.SUCCEEDED, ExecutionState.FAILED}),
    ExecutionState.SUCCEEDED: frozenset(),
    ExecutionState.FAILED: frozenset(),
}


def can_change(current: str, target: ExecutionState) -> bool:
    """Whether a job in state ``current`` may move to ``target``."""
    return target in TRANSITIONS.get(ExecutionState(current), frozenset())


def states_before(target: ExecutionState) -> tuple[ExecutionState, ...]:
    """The states a job may move to ``target`` from (for a conditional SQL update)."""
    return tuple(state for state, targets in TRANSITIONS.items() if target in targets)


class ProvisioningState(StrEnum):
    """A resource's ``provisioningState``; creates are synchronous, so never ``creating``."""

    SUCCEEDED = "succeeded"
    #: its delete has begun (see services/deletions.py)
    DELETING = "deleting"
    #: a file server whose NFS server cannot be started (worked out on each read, never stored)
    FAILED = "failed"


class Priority(StrEnum):
    """A job's ``schedulingPriority``."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"

    @property
    def rank(self) -> int:
        """Stored with the job: a higher rank runs first."""
        return _PRIORITY_TABLE[self][0]

    @property
    def slurm_nice(self) -> int:
        """``sbatch --nice``: never negative, so that no Slurm privilege is needed."""
        return _PRIORITY_TABLE[self][1]

    @classmethod
    def of_rank(cls, rank: int) -> Priority:
        return next(p for p, (r, _) in _PRIORITY_TABLE.items() if r == rank)


#: priority -> (rank, Slurm nice)
_PRIORITY_TABLE: Mapping[Priority, tuple[int, int]] = {
    Priority.LOW: (0, 200),
    Priority.NORMAL: (1, 100),
    Priority.HIGH: (2, 0),
}

#: the directory id of a job's stdout/stderr (an output directory may not take it)
STDOUTERR = "stdouterr"


def stdouterr_path(segment: str) -> str:
    """Where a job's stdout/stderr go below ``stdOutErrPathPrefix``; ``segment`` is the job's
    auto-generated ``{subscription}/{group}/workspaces/.../jobs/{name}/{uid}``."""
    return posixpath.join(segment.strip("/"), STDOUTERR)


def output_path(segment: str, suffix: str = "") -> str:
    """Where an output directory goes below its ``pathPrefix`` (``pathSuffix`` appended)."""
    return posixpath.join(segment.strip("/"), "outputs", suffix.strip("/")).rstrip("/")

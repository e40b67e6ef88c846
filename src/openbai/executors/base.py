"""The executor contract: hand a planned job to where it runs, ask how it goes, stop it.

An executor knows nothing about the database, HTTP or openbai's queue. It gets a run
directory holding ``plan.json`` and returns a :class:`JobRef` (plain JSON, stored by the
caller) from which it can later tell the job's state, even after the caller restarted.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from openbai.executors.gpus import MachineGpus
from openbai.plan.job_plan import JobPlan, NodeSpec
from openbai.plan.results import Outcome
from openbai.vocabulary import Priority


class RunState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    FINISHED = "finished"


@dataclass(frozen=True)
class JobRef:
    executor: str
    data: dict[str, Any]


@dataclass(frozen=True)
class RunStatus:
    state: RunState
    #: set when FINISHED: exit code and errors (a lost job finishes with an error)
    outcome: Outcome | None = None


@dataclass(frozen=True)
class SubmitRequest:
    run_dir: Path
    plan: JobPlan
    #: node slots of the cluster given to the job (executors that do not queue jobs themselves)
    slots: list[int] = field(default_factory=list)
    priority: Priority = Priority.NORMAL
    #: executor-specific cluster settings (a Slurm partition, say)
    cluster_options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NodeCounts:
    idle: int = 0
    running: int = 0
    preparing: int = 0
    unusable: int = 0
    leaving: int = 0


class Executor(ABC):
    name: ClassVar[str]
    #: True when the executor queues jobs and picks nodes itself (Slurm); False when openbai
    #: gives each job free node slots of the cluster (local)
    queues_jobs: ClassVar[bool] = False

    @abstractmethod
    def node_specs(self, request_slots: list[int], cluster_key: str) -> list[NodeSpec]:
        """The nodes a job will see, for slots given by openbai (or placeholders)."""

    @abstractmethod
    def submit(self, request: SubmitRequest) -> JobRef: ...

    @abstractmethod
    def status(self, ref: JobRef) -> RunStatus: ...

    @abstractmethod
    def cancel(self, ref: JobRef, *, force: bool = False) -> None:
        """Ask the job to stop (its runners flush outputs); ``force`` kills without waiting."""

    def remove_cluster_files(self, cluster_key: str) -> None:
        """Remove what a deleted cluster's nodes kept on this machine (on Batch AI its nodes'
        disks went with it); nothing where each job's node root goes with the job (Slurm)."""
        return None

    def recover(self, run_dir: Path) -> JobRef | None:
        """The handle of a job submitted by a caller that died before it stored the handle."""
        return None

    def has_container_runtime(self, configured: str | None) -> bool:
        """Whether the nodes can run a job in its image with ``configured`` (podman, docker);
        True when the executor cannot tell from here (its node checks at start)."""
        return True

    def machine_gpus(self) -> MachineGpus | None:
        """The GPUs openbai hands out to the slots of this machine's clusters; None when the
        executor's scheduler assigns GPUs itself (Slurm)."""
        return None

    def host_gpus(self, cluster_options: dict[str, Any]) -> dict[str, int] | None:
        """GPUs of each host the cluster's jobs may run on, as the scheduler counts them;
        None when openbai hands out GPUs itself (see machine_gpus) or cannot tell now."""
        return None

    def node_counts(self, cluster_options: dict[str, Any], size: int) -> NodeCounts | None:
        """Node states as the executor sees them, or None to let openbai count slots."""
        return None

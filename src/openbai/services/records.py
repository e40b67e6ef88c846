"""What the use cases return: plain, typed, read-only records of the resources.

A record is taken from its row while the row's session is open, so it can be shown, sent or
compared anywhere without touching the database again. How a record looks on the wire (ARM's
``{id, name, type, properties}``) is the edges' business: ``http/views.py``. Nothing secret is
in a record: specs are stored without secret values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from openbai.scheduling.locations import setup_task_suffix

if TYPE_CHECKING:  # records are also made without the ORM (services/quick_reads.py)
    from openbai.store.models import Cluster, Experiment, FileServer, Job, Workspace


@dataclass(frozen=True)
class Provisioning:
    created_at: datetime
    state: str
    changed_at: datetime


@dataclass(frozen=True)
class WorkspaceRecord:
    resource_group: str
    name: str
    location: str
    tags: dict[str, str]
    provisioning: Provisioning

    @classmethod
    def of(cls, row: Workspace) -> WorkspaceRecord:
        return cls(
            row.resource_group,
            row.name,
            row.location,
            dict(row.tags or {}),
            Provisioning(row.created_at, row.provisioning_state, row.provisioning_changed_at),
        )


@dataclass(frozen=True)
class ExperimentRecord:
    resource_group: str
    workspace: str
    name: str
    provisioning: Provisioning

    @classmethod
    def of(cls, row: Experiment) -> ExperimentRecord:
        ws = row.workspace
        return cls(
            ws.resource_group,
            ws.name,
            row.name,
            Provisioning(row.created_at, row.provisioning_state, row.provisioning_changed_at),
        )


@dataclass(frozen=True)
class NodeStateCounts:
    idle: int = 0
    running: int = 0
    preparing: int = 0
    unusable: int = 0
    leaving: int = 0

    @property
    def current(self) -> int:
        return self.idle + self.running + self.preparing + self.unusable + self.leaving


@dataclass(frozen=True)
class ClusterRecord:
    resource_group: str
    workspace: str
    name: str
    uid: str
    #: the cluster's properties as given (camelCase, secret values left out)
    spec: dict[str, Any]
    #: where under its stdOutErrPathPrefix the setup task writes (None without a setup task)
    setup_task_suffix: str | None
    provisioning: Provisioning
    allocation_state: str
    allocation_changed_at: datetime
    errors: list[Any]
    nodes: NodeStateCounts
    #: GPUs of the cluster's nodes: its slots', or its Slurm hosts' (GRES)
    gpu_count: int = 0

    @classmethod
    def of(cls, row: Cluster, subscription_id: str, nodes: NodeStateCounts) -> ClusterRecord:
        ws = row.workspace
        has_task = ((row.spec.get("nodeSetup") or {}).get("setupTask")) is not None
        return cls(
            ws.resource_group,
            ws.name,
            row.name,
            row.uid,
            dict(row.spec),
            setup_task_suffix(subscription_id, ws.resource_group, ws.name, row.name, row.uid)
            if has_task
            else None,
            Provisioning(row.created_at, row.provisioning_state, row.provisioning_changed_at),
            row.allocation_state,
            row.allocation_changed_at,
            list(row.errors or []),
            nodes,
        )


@dataclass(frozen=True)
class JobRecord:
    resource_group: str
    workspace: str
    experiment: str
    name: str
    #: the job's properties as given (camelCase, secret values left out)
    spec: dict[str, Any]
    cluster_ref: str
    tool_type: str
    output_segment: str
    provisioning: Provisioning
    execution_state: str
    execution_changed_at: datetime
    start_time: datetime | None = None
    end_time: datetime | None = None
    exit_code: int | None = None
    errors: list[Any] = field(default_factory=list)
    #: what the submitter should know (set by create only): the job runs on the host, say
    warnings: list[str] = field(default_factory=list)
    #: its place in creation order (set by listings): where the next page goes on
    key: int | None = None

    @classmethod
    def of(cls, row: Job) -> JobRecord:
        exp = row.experiment
        ws = exp.workspace
        return cls.of_columns((ws.resource_group, ws.name, exp.name), row)

    @classmethod
    def of_columns(cls, names: tuple[str, str, str], row: Any) -> JobRecord:
        """The record of a job's columns (a ``Job`` or a row selecting the same names), its
        resource group, workspace and experiment given (the same for a whole page)."""
        return cls(
            *names,
            row.name,
            dict(row.spec),
            row.cluster_ref,
            row.tool_type,
            row.output_segment,
            Provisioning(row.created_at, row.provisioning_state, row.provisioning_changed_at),
            row.execution_state,
            row.execution_changed_at,
            row.start_time,
            row.end_time,
            row.exit_code,
            list(row.errors or []),
        )


@dataclass(frozen=True)
class FileServerRecord:
    resource_group: str
    workspace: str
    name: str
    spec: dict[str, Any]
    provisioning: Provisioning
    #: where clients mount it (mountPoint, fileServerPublicIP, fileServerInternalIP)
    mount_settings: dict[str, str] | None = None

    @classmethod
    def of(cls, row: FileServer) -> FileServerRecord:
        ws = row.workspace
        return cls(
            ws.resource_group,
            ws.name,
            row.name,
            dict(row.spec),
            Provisioning(row.created_at, row.provisioning_state, row.provisioning_changed_at),
        )

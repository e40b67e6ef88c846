"""The tables: one row per Batch AI resource, its spec kept as the wire JSON it was created with.

Specs are stored as the camelCase JSON of the create parameters (versioned by the API version
in ``spec_version``) rather than as columns: the REST shape is the contract, and columns exist
only for what is queried or updated concurrently (names, states, times, scheduling keys).
Secrets (job secrets, account keys) live in their own columns so that nothing that renders a
spec can leak them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from openbai.vocabulary import ExecutionState, ProvisioningState


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every database (SQLite keeps no time zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UTCDateTime}


class Workspace(Base):
    __tablename__ = "workspaces"
    __table_args__ = (UniqueConstraint("resource_group", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_group: Mapped[str] = mapped_column(String(90))
    name: Mapped[str] = mapped_column(String(64))
    location: Mapped[str] = mapped_column(String(90))
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    provisioning_state: Mapped[str] = mapped_column(
        String(16), default=ProvisioningState.SUCCEEDED.value
    )
    provisioning_changed_at: Mapped[datetime] = mapped_column(default=utcnow)

    experiments: Mapped[list[Experiment]] = relationship(
        back_populates="workspace", cascade="all, delete-orphan", passive_deletes=True
    )
    clusters: Mapped[list[Cluster]] = relationship(
        back_populates="workspace", cascade="all, delete-orphan", passive_deletes=True
    )
    file_servers: Mapped[list[FileServer]] = relationship(
        back_populates="workspace", cascade="all, delete-orphan", passive_deletes=True
    )


class Experiment(Base):
    __tablename__ = "experiments"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    provisioning_state: Mapped[str] = mapped_column(
        String(16), default=ProvisioningState.SUCCEEDED.value
    )
    provisioning_changed_at: Mapped[datetime] = mapped_column(default=utcnow)

    workspace: Mapped[Workspace] = relationship(back_populates="experiments")
    jobs: Mapped[list[Job]] = relationship(
        back_populates="experiment", cascade="all, delete-orphan", passive_deletes=True
    )


class Cluster(Base):
    __tablename__ = "clusters"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    spec: Mapped[dict[str, Any]] = mapped_column()
    secrets: Mapped[dict[str, Any]] = mapped_column(default=dict)
    executor: Mapped[str] = mapped_column(String(32), default="local")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    provisioning_state: Mapped[str] = mapped_column(
        String(16), default=ProvisioningState.SUCCEEDED.value
    )
    provisioning_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    allocation_state: Mapped[str] = mapped_column(String(16), default="steady")
    allocation_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: nodes (slots) allocated now; the dispatcher moves it towards the scale settings' target
    current_node_count: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[Any]] = mapped_column(default=list)

    workspace: Mapped[Workspace] = relationship(back_populates="clusters")


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("experiment_id", "name"),
        Index("ix_jobs_queue", "execution_state", "priority", "id"),
        # list jobs: one experiment's jobs in creation order, a page at a time
        Index("ix_jobs_experiment_id", "experiment_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    spec: Mapped[dict[str, Any]] = mapped_column()
    secrets: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: ARM id of the cluster the job runs on, as given (the cluster may be deleted later)
    cluster_ref: Mapped[str] = mapped_column(Text)
    cluster_id: Mapped[int | None] = mapped_column(
        ForeignKey("clusters.id", ondelete="SET NULL"), index=True
    )
    tool_type: Mapped[str] = mapped_column(String(16))
    node_count: Mapped[int] = mapped_column(Integer, default=1)
    #: higher runs first: low=0, normal=1, high=2
    priority: Mapped[int] = mapped_column(Integer, default=1)
    output_segment: Mapped[str] = mapped_column(Text)
    #: where each output directory (and "stdouterr") lies in storage, resolved at creation
    locations: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    provisioning_state: Mapped[str] = mapped_column(
        String(16), default=ProvisioningState.SUCCEEDED.value
    )
    provisioning_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    execution_state: Mapped[str] = mapped_column(String(16), default=ExecutionState.QUEUED.value)
    execution_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    start_time: Mapped[datetime | None] = mapped_column(default=None)
    end_time: Mapped[datetime | None] = mapped_column(default=None)
    exit_code: Mapped[int | None] = mapped_column(default=None)
    errors: Mapped[list[Any]] = mapped_column(default=list)
    #: node slots of a local cluster taken by the job while it runs
    nodes: Mapped[list[Any]] = mapped_column(default=list)
    #: the executor's handle on the running job (pids, Slurm job id)
    executor_ref: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    terminate_requested: Mapped[bool] = mapped_column(default=False)
    #: stopped because a resize took its node away: its cluster's ``nodeDeallocationOption``
    #: (``requeue``: queued again once its runners have stopped; ``terminate``: ended)
    deallocation: Mapped[str | None] = mapped_column(String(16), default=None)

    experiment: Mapped[Experiment] = relationship(back_populates="jobs")


class FileServer(Base):
    __tablename__ = "file_servers"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    provisioning_state: Mapped[str] = mapped_column(
        String(16), default=ProvisioningState.SUCCEEDED.value
    )
    provisioning_changed_at: Mapped[datetime] = mapped_column(default=utcnow)

    workspace: Mapped[Workspace] = relationship(back_populates="file_servers")


class StorageAccount(Base):
    __tablename__ = "storage_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(24), unique=True)
    resource_group: Mapped[str] = mapped_column(String(90))
    kind: Mapped[str] = mapped_column(String(16))
    #: non-secret options (endpoints, root directory)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: encrypted secret options (account key, connection string), see store/secrets.py
    sealed_secrets: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: reader, contributor or owner (Batch AI's RBAC roles)
    role: Mapped[str] = mapped_column(String(16), default="owner", server_default="owner")
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    #: "resourceGroup/workspace" names the token is limited to; empty: every workspace
    workspaces: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")

    sessions: Mapped[list[WebSession]] = relationship(
        back_populates="token", cascade="all, delete-orphan", passive_deletes=True
    )


class WebSession(Base):
    """A browser's login: its cookie holds the id, the table only the id's SHA-256."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()

    token: Mapped[ApiToken] = relationship(back_populates="sessions")


class AuditEntry(Base):
    """One mutating API call or web action; the token's name is kept as it was then, so the
    entry outlives the token."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_time", "time"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    time: Mapped[datetime] = mapped_column(default=utcnow)
    token_name: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    resource: Mapped[str] = mapped_column(Text)
    result: Mapped[str] = mapped_column(String(16))
    status: Mapped[int] = mapped_column(Integer)

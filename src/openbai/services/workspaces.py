"""Workspaces and experiments: the containers of clusters and jobs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session, contains_eager

from openbai.errors import ConflictError, NotFoundError
from openbai.installation import App
from openbai.services.records import ExperimentRecord, WorkspaceRecord
from openbai.spec import WorkspaceCreateParameters, check_name, check_resource_group, parse
from openbai.store.models import Cluster, Experiment, FileServer, Job, Workspace
from openbai.vocabulary import ProvisioningState


def check_not_deleting(row: Workspace | Experiment | Cluster | Job | FileServer, what: str) -> None:
    """Refuse to add to (or re-create) a resource whose delete has begun."""
    if row.provisioning_state == ProvisioningState.DELETING:
        raise ConflictError(
            f"{what} {row.name} is being deleted; try again when it is gone",
            code="ResourceBeingDeleted",
            target=row.name,
        )


#: statements built once: building one cost more than running it (a create looks up its
#: experiment twice and its cluster once)
_WORKSPACE = select(Workspace).where(
    Workspace.resource_group == bindparam("rg"), Workspace.name == bindparam("ws")
)


def named_in_workspace(model: type[Experiment] | type[Cluster]) -> Select[Any]:
    """The query of the ``model`` named ``:name`` in workspace ``:rg``/``:ws``, its workspace
    loaded with it."""
    return (
        select(model)
        .join(model.workspace)
        .options(contains_eager(model.workspace))
        .where(
            Workspace.resource_group == bindparam("rg"),
            Workspace.name == bindparam("ws"),
            model.name == bindparam("name"),
        )
    )


_EXPERIMENT = named_in_workspace(Experiment)


def workspace_row(s: Session, rg: str, name: str) -> Workspace:
    row = s.scalar(_WORKSPACE, {"rg": rg, "ws": name})
    if row is None:
        raise NotFoundError(
            f"The specified workspace {name} is not found in resource group {rg}",
            code="WorkspaceNotFound",
            target=name,
        )
    return row


def experiment_row(s: Session, rg: str, ws: str, name: str) -> Experiment:
    """The experiment with its workspace, in one query (a create looks them up twice)."""
    row: Experiment | None = s.scalar(_EXPERIMENT, {"rg": rg, "ws": ws, "name": name})
    if row is None:
        workspace_row(s, rg, ws)  # says so when it is the workspace that is missing
        raise NotFoundError(
            f"The specified experiment {name} is not found in workspace {ws}",
            code="ExperimentNotFound",
            target=name,
        )
    return row


def experiment_id(s: Session, rg: str, ws: str, name: str) -> int:
    """The experiment's key, in one query (a page of jobs needs no more of it); not found
    is told as :func:`experiment_row` tells it."""
    found = s.scalar(
        select(Experiment.id)
        .join(Workspace, Experiment.workspace_id == Workspace.id)
        .where(Workspace.resource_group == rg, Workspace.name == ws, Experiment.name == name)
    )
    return found if found is not None else experiment_row(s, rg, ws, name).id


def create_workspace(
    app: App, rg: str, name: str, body: dict[str, Any] | None = None
) -> WorkspaceRecord:
    check_resource_group(rg, field="resourceGroupName")
    check_name(name, field="workspaceName")
    params = parse(WorkspaceCreateParameters, body or {"location": app.settings.location})
    with app.db.session() as s:
        row = s.scalar(
            select(Workspace).where(Workspace.resource_group == rg, Workspace.name == name)
        )
        if row is None:
            row = Workspace(
                resource_group=rg, name=name, location=params.location, tags=dict(params.tags or {})
            )
            s.add(row)
            s.flush()
        elif row.provisioning_state == ProvisioningState.DELETING:
            check_not_deleting(row, "workspace")
        elif params.location != row.location:
            raise ConflictError(
                f"workspace {name} exists in location {row.location}, not {params.location}",
                target="location",
            )
        else:
            row.tags = dict(params.tags or row.tags)
        return WorkspaceRecord.of(row)


def update_workspace(app: App, rg: str, name: str, tags: dict[str, str] | None) -> WorkspaceRecord:
    with app.db.session() as s:
        row = workspace_row(s, rg, name)
        if tags is not None:
            row.tags = dict(tags)
        return WorkspaceRecord.of(row)


def get_workspace(app: App, rg: str, name: str) -> WorkspaceRecord:
    with app.db.reading() as s:
        return WorkspaceRecord.of(workspace_row(s, rg, name))


def list_workspaces(
    app: App, rg: str | None = None, *, offset: int = 0, limit: int | None = None
) -> list[WorkspaceRecord]:
    with app.db.reading() as s:
        query = (
            select(Workspace)
            .order_by(Workspace.resource_group, Workspace.name)
            .offset(offset)
            .limit(limit)
        )
        if rg is not None:
            query = query.where(Workspace.resource_group == rg)
        return [WorkspaceRecord.of(w) for w in s.scalars(query)]


def create_experiment(app: App, rg: str, ws: str, name: str) -> ExperimentRecord:
    check_name(name, field="experimentName")
    with app.db.session() as s:
        workspace = workspace_row(s, rg, ws)
        check_not_deleting(workspace, "workspace")
        row = s.scalar(
            select(Experiment).where(
                Experiment.workspace_id == workspace.id, Experiment.name == name
            )
        )
        if row is not None:
            check_not_deleting(row, "experiment")
        if row is None:
            row = Experiment(workspace=workspace, name=name)
            s.add(row)
            s.flush()
        return ExperimentRecord.of(row)


def get_experiment(app: App, rg: str, ws: str, name: str) -> ExperimentRecord:
    with app.db.reading() as s:
        return ExperimentRecord.of(experiment_row(s, rg, ws, name))


def list_experiments(
    app: App, rg: str, ws: str, *, offset: int = 0, limit: int | None = None
) -> list[ExperimentRecord]:
    with app.db.reading() as s:
        workspace = workspace_row(s, rg, ws)
        query = (
            select(Experiment)
            .where(Experiment.workspace_id == workspace.id)
            .order_by(Experiment.name)
            .offset(offset)
            .limit(limit)
        )
        return [ExperimentRecord.of(e) for e in s.scalars(query)]

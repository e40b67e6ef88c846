"""Jobs: create from a job.json, show, list, terminate, delete.

Creating a job checks everything that can be checked before it runs (cluster, accounts,
containers, shares, paths) so that bad input fails at once with the offending field named,
then stores the job ``queued`` and wakes the dispatcher, which runs it when nodes are free.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import ColumnElement, Integer, Select, Table, bindparam, case, func, insert, select
from sqlalchemy.orm import Session, joinedload

from openbai.errors import ConflictError, ExecutorUnavailableError, NotFoundError, SpecError
from openbai.installation import App
from openbai.scheduling.locations import MountedVolume, VolumeLocation
from openbai.scheduling.volumes import mounted_volumes
from openbai.services import ids
from openbai.services.clusters import cluster_row
from openbai.services.containers import image_job_warnings
from openbai.services.reach import require_workspace
from openbai.services.records import JobRecord, Provisioning
from openbai.services.tokens import TokenInfo
from openbai.services.volumes import require_on_volume, resolve_mounts
from openbai.services.workspaces import check_not_deleting, experiment_id, experiment_row
from openbai.spec import JobCreateParameters, check_name, parse
from openbai.spec.placeholders import check_no_placeholders
from openbai.store.models import Cluster, Experiment, Job, UTCDateTime, Workspace, utcnow
from openbai.store.secrets import sealed
from openbai.store.specs import cluster_properties
from openbai.vocabulary import (
    FINAL_STATES,
    STDOUTERR,
    ExecutionState,
    Priority,
    ProvisioningState,
    output_path,
    stdouterr_path,
)


def job_row(s: Session, rg: str, ws: str, exp: str, name: str) -> Job:
    experiment = experiment_row(s, rg, ws, exp)
    row = s.scalar(select(Job).where(Job.experiment_id == experiment.id, Job.name == name))
    if row is None:
        raise NotFoundError(
            f"The specified job {name} is not found in experiment {exp}",
            code="JobNotFound",
            target=name,
        )
    return row


def create_job(
    app: App,
    rg: str,
    ws: str,
    exp: str,
    name: str,
    body: Mapping[str, Any],
    *,
    cluster: str | None = None,
    caller: TokenInfo | None = None,
) -> JobRecord:
    """A new job of ``body``; what it names in other workspaces (its cluster, file servers) is
    checked against ``caller``'s token (None: the local CLI)."""
    check_name(name, field="jobName")
    data = dict(body)  # the CLI filled its placeholders; one left over names no account
    check_no_placeholders(data, what="job file", target="properties.mountVolumes")
    props = parse(JobCreateParameters, data).properties
    cluster_given = cluster or (props.cluster.id if props.cluster else None)
    if not cluster_given:
        raise SpecError(
            "properties.cluster: the job needs a cluster (-c NAME or properties.cluster.id)",
            target="properties.cluster.id",
        )
    ref = ids.parse_cluster_ref(
        cluster_given, resource_group=rg, workspace=ws, field="properties.cluster.id"
    )
    require_workspace(caller, ref.resource_group, ref.workspace, field="properties.cluster.id")
    ids.require_this_subscription(
        ref.subscription,
        app.settings.subscription_id,
        what="cluster",
        field="properties.cluster.id",
        code="ClusterNotFound",
    )
    for secret_index, secret in enumerate(props.secrets):
        if secret.value is None:
            raise SpecError(
                f"properties.secrets[{secret_index}].valueSecretReference: Key Vault references cannot be resolved by openbai; give the value",
                target=f"properties.secrets[{secret_index}].valueSecretReference",
            )
    registry = props.container_settings.image_source_registry if props.container_settings else None
    if registry and registry.credentials and registry.credentials.password is None:
        field = (
            "properties.containerSettings.imageSourceRegistry.credentials.passwordSecretReference"
        )
        raise SpecError(
            f"{field}: Key Vault references cannot be resolved by openbai; give the password",
            target=field,
        )

    with app.db.reading() as s:
        experiment = experiment_row(s, rg, ws, exp)
        check_not_deleting(experiment.workspace, "workspace")
        check_not_deleting(experiment, "experiment")
        try:
            cl = cluster_row(s, ref.resource_group, ref.workspace, ref.name)
        except NotFoundError:
            raise SpecError(
                f"properties.cluster.id: The specified cluster {ref.name} is not found in workspace {ref.workspace}",
                target="properties.cluster.id",
                code="ClusterNotFound",
            ) from None
        check_not_deleting(cl, "cluster")
        if cl.workspace_id != experiment.workspace_id:  # a cluster of another workspace
            check_not_deleting(cl.workspace, "workspace")
        cluster_props = cluster_properties(cl)
        cluster_id, cluster_ref = (
            cl.id,
            ids.cluster_id(
                app.settings.subscription_id, ref.resource_group, ref.workspace, ref.name
            ),
        )
    # as on Batch AI, a job larger than its cluster is accepted and waits, queued, until the
    # cluster has grown (a resize, or auto-scale up to its maximum)
    if cluster_props.openbai.require_containers:
        if props.container_settings is None:
            raise SpecError(
                f"properties.containerSettings: cluster {ref.name} runs jobs only in containers; give an image",
                target="properties.containerSettings",
            )
    warnings = image_job_warnings(app, ref.name, cluster_props, props)

    cluster_volumes = cluster_props.node_setup.mount_volumes if cluster_props.node_setup else None
    mounted = [
        *mounted_volumes(  # checked when the cluster was created
            cluster_volumes,
            root="AZ_BATCHAI_MOUNT_ROOT",
            field="cluster.nodeSetup.mountVolumes",
        ),
        *resolve_mounts(
            app,
            props.mount_volumes,
            root="AZ_BATCHAI_JOB_MOUNT_ROOT",
            field="properties.mountVolumes",
            caller=caller,
        ),
    ]
    uid = str(uuid.uuid4())
    segment = (
        f"{app.settings.subscription_id}/{rg}/workspaces/{ws}/experiments/{exp}/jobs/{name}/{uid}"
    )
    locations: dict[str, Any] = {}
    stdouterr = _on_volume(props.std_out_err_path_prefix, mounted, "properties.stdOutErrPathPrefix")
    locations[STDOUTERR] = stdouterr.join(stdouterr_path(segment)).to_json()
    for index, out in enumerate(props.output_directories):
        field = f"properties.outputDirectories[{index}].pathPrefix"
        loc = _on_volume(out.path_prefix, mounted, field)
        locations[out.id] = loc.join(output_path(segment, out.path_suffix or "")).to_json()

    wire = props.to_public_wire()
    wire.pop("cluster", None)
    with app.db.session() as s:
        experiment = experiment_row(s, rg, ws, exp)
        check_not_deleting(experiment, "experiment")
        check_not_deleting(experiment.workspace, "workspace")  # its delete may have begun since
        _check_cluster_still_takes_jobs(s, cluster_id, ref.name)
        if s.scalar(_JOB_ID, {"experiment": experiment.id, "name": name}) is not None:
            raise ConflictError(
                f"job {name} already exists in experiment {exp}",
                code="JobAlreadyExists",
                target=name,
            )
        # one INSERT of the columns (the unit of work cost more than the rest of the create);
        # a new job's states are set here, and its record is made of the same values
        now = utcnow()
        provisioning = Provisioning(now, ProvisioningState.SUCCEEDED.value, now)
        state = ExecutionState.QUEUED.value
        s.connection().execute(
            _INSERT_JOB,
            {
                "experiment_id": experiment.id,
                "name": name,
                "uid": uid,
                "spec": wire,
                "secrets": sealed(app.sealer, _secrets(props)),
                "cluster_ref": cluster_ref,
                "cluster_id": cluster_id,
                "tool_type": props.tool_type,
                "node_count": props.node_count,
                "priority": Priority(props.scheduling_priority).rank,
                "output_segment": segment,
                "locations": locations,
                "created_at": provisioning.created_at,
                "provisioning_state": provisioning.state,
                "provisioning_changed_at": provisioning.changed_at,
                "execution_state": state,
                "execution_changed_at": now,
            },
        )
    result = JobRecord(
        rg,
        ws,
        exp,
        name,
        wire,
        cluster_ref,
        props.tool_type,
        segment,
        provisioning,
        state,
        now,
        warnings=warnings,
    )
    app.changed()
    return result


def _check_cluster_still_takes_jobs(s: Session, cluster_id: int, name: str) -> None:
    """In the session that inserts the job: the cluster checked before may have been deleted,
    or its delete begun, since. Its row is locked (PostgreSQL; SQLite's write lock is the
    whole database), so a delete that counts its jobs does so after this one is in."""
    cluster = s.scalar(_CLUSTER_FOR_JOB, {"id": cluster_id})
    if cluster is None:
        raise SpecError(
            f"properties.cluster.id: The specified cluster {name} is not found",
            target="properties.cluster.id",
            code="ClusterNotFound",
        )
    check_not_deleting(cluster, "cluster")
    check_not_deleting(cluster.workspace, "workspace")


_CLUSTER_FOR_JOB = (
    select(Cluster)
    .where(Cluster.id == bindparam("id"))
    .options(joinedload(Cluster.workspace))
    .with_for_update(of=Cluster)
)
_INSERT_JOB = insert(cast(Table, Job.__table__))  # Core: the ORM-enabled statement cost more
_JOB_ID = select(Job.id).where(
    Job.experiment_id == bindparam("experiment"), Job.name == bindparam("name")
)


def _on_volume(prefix: str, mounted: list[MountedVolume], field: str) -> VolumeLocation:
    return require_on_volume(
        prefix,
        mounted,
        field,
        mounted_on="for the job",
        none_mounted="neither the job nor the cluster mounts one (mountVolumes)",
    )


def _secrets(props: Any) -> dict[str, Any]:
    """What the stored spec leaves out: secret values and a registry password."""
    registry = props.container_settings.image_source_registry if props.container_settings else None
    password = registry.credentials.password if registry and registry.credentials else None
    return {
        "env": {sec.name: sec.value for sec in props.secrets if sec.value is not None},
        "registryPassword": password,
    }


def get_job(app: App, rg: str, ws: str, exp: str, name: str) -> JobRecord:
    """The job's record, in one query of the columns it shows (the most frequent request of
    a busy server: loading the workspace, experiment and job as ORM objects cost 3× more);
    a job that is not there is looked up step by step, to say what is missing."""
    row = app.db.first(_JOB_BY_NAMES, {"rg": rg, "ws": ws, "exp": exp, "name": name})
    if row is None:
        with app.db.reading() as s:
            job_row(s, rg, ws, exp, name)  # raises the NotFoundError naming what is missing
    return _record((rg, ws, exp), row)


def list_jobs(
    app: App,
    rg: str,
    ws: str,
    exp: str,
    *,
    offset: int = 0,
    limit: int | None = None,
    state: str | None = None,
    order: str = "created",
    after: int | None = None,
) -> list[JobRecord]:
    """A page of the experiment's jobs, by creation (the API's order) or by ``order``, one
    of :data:`JOB_ORDERS`; ``after`` (in creation order): those after the job of that
    :attr:`JobRecord.key`, whatever was deleted or added before it since.

    Only the columns a record shows are selected, as plain rows: loading ORM objects (and
    the secrets, locations and node lists that a listing never shows) took most of the time
    of a page of 1,000; the names above the job are the same for the whole page. The page is
    one prepared statement that finds the experiment by its names (a session, the
    experiment's own query and a statement built for each page cost more than a page of
    100 itself); an empty page is looked at again, to say what is missing if anything.
    """
    dialect = app.db.engine.dialect.name
    keyed = after is not None
    if keyed and order != "created":
        raise SpecError("a page goes on after a job only in creation order", target="order")
    statement = _page_statement(order, dialect, state is not None, limit is not None, keyed)
    params: dict[str, Any] = {"rg": rg, "ws": ws, "exp": exp, "offset": offset}
    if keyed:
        params["after"] = after
    if limit is not None:
        params["limit"] = limit
    if state is not None:
        params["state"] = state
    if order.removeprefix("-") == "duration":
        params["now"] = utcnow()
    rows = app.db.all(statement, params)
    if not rows:
        with app.db.reading() as s:
            experiment_id(s, rg, ws, exp)  # raises the NotFoundError naming what is missing
    names = (rg, ws, exp)
    return [_record(names, row) for row in rows]


@functools.cache  # built once per order, dialect and filter
def _page_statement(
    order: str, dialect: str, by_state: bool, limited: bool, keyed: bool = False
) -> Select[Any]:
    experiment = (
        select(Experiment.id)
        .join(Workspace, Experiment.workspace_id == Workspace.id)
        .where(
            Workspace.resource_group == bindparam("rg"),
            Workspace.name == bindparam("ws"),
            Experiment.name == bindparam("exp"),
        )
        .scalar_subquery()
    )
    statement = (
        select(*_LISTED)
        .where(Job.experiment_id == experiment)
        .order_by(*_order_by(order, dialect))
        .offset(bindparam("offset", type_=Integer()))
    )
    if limited:
        statement = statement.limit(bindparam("limit", type_=Integer()))
    if by_state:
        statement = statement.where(Job.execution_state == bindparam("state"))
    if keyed:
        statement = statement.where(Job.id > bindparam("after", type_=Integer()))
    return statement


#: the orders a page of jobs is listed in; a leading ``-`` reverses one
JOB_ORDERS = ("created", "state", "start", "duration")


def _seconds(moment: Any, dialect: str) -> ColumnElement[Any]:
    """A time as seconds, to subtract (SQLite keeps times as text)."""
    if dialect == "sqlite":
        return func.julianday(moment) * 86400
    return func.extract("epoch", moment)


def _order_by(order: str, dialect: str) -> list[ColumnElement[Any]]:
    """``order`` as ORDER BY terms: jobs not started yet (no start, no duration) come last
    either way, and ties newest first."""
    name = order.removeprefix("-")
    if name not in JOB_ORDERS:
        allowed = ", ".join(f"{o}, -{o}" for o in JOB_ORDERS)
        raise SpecError(f"order must be one of {allowed}; got {order!r}", target="order")
    key: Any  # a column, or an expression of columns
    if name == "created":
        key = Job.id
    elif name == "state":  # in the order a job goes through them
        key = case({s.value: i for i, s in enumerate(ExecutionState)}, value=Job.execution_state)
    elif name == "start":
        key = Job.start_time
    else:  # until now for a job still running
        now = bindparam("now", utcnow(), type_=UTCDateTime())
        end = func.coalesce(Job.end_time, now)
        key = _seconds(end, dialect) - _seconds(Job.start_time, dialect)
    terms: list[ColumnElement[Any]] = [key.desc() if order.startswith("-") else key.asc()]
    if name in ("start", "duration"):
        terms.insert(0, Job.start_time.is_(None))
    if name != "created":
        terms.append(Job.id.desc())
    return terms


_LISTED = (
    Job.name, Job.spec, Job.cluster_ref, Job.tool_type, Job.output_segment, Job.created_at,
    Job.provisioning_state, Job.provisioning_changed_at, Job.execution_state,
    Job.execution_changed_at, Job.start_time, Job.end_time, Job.exit_code, Job.errors, Job.id,
)  # fmt: skip


def _record(names: tuple[str, str, str], row: Any) -> JobRecord:
    """The record of a row of :data:`_LISTED`, unpacked in that order: a row's attributes by
    name cost ~0.4 us each, two thirds of a listed job's record."""
    (name, spec, cluster_ref, tool_type, output_segment, created_at, provisioning_state,
     provisioning_changed_at, execution_state, execution_changed_at, start_time, end_time,
     exit_code, errors, key) = row  # fmt: skip
    return JobRecord(
        *names,
        name,
        dict(spec),
        cluster_ref,
        tool_type,
        output_segment,
        Provisioning(created_at, provisioning_state, provisioning_changed_at),
        execution_state,
        execution_changed_at,
        start_time,
        end_time,
        exit_code,
        list(errors or []),
        key=key,
    )


_JOB_BY_NAMES = (
    select(*_LISTED)
    .join(Experiment, Job.experiment_id == Experiment.id)
    .join(Workspace, Experiment.workspace_id == Workspace.id)
    .where(
        Workspace.resource_group == bindparam("rg"),
        Workspace.name == bindparam("ws"),
        Experiment.name == bindparam("exp"),
        Job.name == bindparam("name"),
    )
)


def count_jobs(app: App, rg: str, ws: str, exp: str, *, state: str | None = None) -> int:
    with app.db.reading() as s:
        query = (
            select(func.count())
            .select_from(Job)
            .where(Job.experiment_id == experiment_id(s, rg, ws, exp))
        )
        if state is not None:
            query = query.where(Job.execution_state == state)
        return s.scalar(query) or 0


def terminate_job(app: App, rg: str, ws: str, exp: str, name: str) -> JobRecord:
    with app.db.reading() as s:
        job_id = job_row(s, rg, ws, exp, name).id
    request_termination(app, job_id)
    return get_job(app, rg, ws, exp, name)


def request_termination(app: App, job_id: int) -> None:
    """Queued jobs fail at once; running ones are asked to stop (their outputs are kept)."""
    from openbai.executors.base import JobRef

    with app.db.session() as s:
        job = s.get(Job, job_id)
        if job is None or job.execution_state in FINAL_STATES:
            return
        now = utcnow()
        job.terminate_requested = True
        job.deallocation = None  # the user's terminate, not a resize's stop or requeue
        if job.execution_state == ExecutionState.QUEUED and job.executor_ref is None:
            job.execution_state = ExecutionState.FAILED
            job.execution_changed_at = now
            job.end_time = now
            job.errors = [
                {
                    "code": "JobTerminated",
                    "message": "the job was terminated by the user before it started",
                }
            ]
            ref = None
        else:
            job.execution_state = ExecutionState.TERMINATING
            job.execution_changed_at = now
            ref = job.executor_ref
    if ref is not None:
        try:
            app.executor(ref["executor"]).cancel(JobRef(ref["executor"], ref["data"]))
        except ExecutorUnavailableError:
            pass  # taken all the same: the dispatcher passes it on each round until it is heard
    app.changed()


def stop_jobs(app: App, job_ids: list[int], *, timeout: float = 15.0) -> None:
    """Terminate the given jobs and wait (a while) until none of them runs any more."""
    for job_id in job_ids:
        request_termination(app, job_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.db.reading() as s:
            left = (
                s.scalar(
                    select(func.count())
                    .select_from(Job)
                    .where(Job.id.in_(job_ids), Job.execution_state.not_in(FINAL_STATES))
                )
                or 0
            )
        if not left:
            return
        time.sleep(0.1)
    from openbai.executors.base import JobRef

    with app.db.session() as s:
        refs = [
            j.executor_ref
            for j in s.scalars(select(Job).where(Job.id.in_(job_ids)))
            if j.executor_ref
        ]
    for ref in refs:
        app.executor(ref["executor"]).cancel(JobRef(ref["executor"], ref["data"]), force=True)


def location_of(
    app: App, rg: str, ws: str, exp: str, name: str, directory_id: str
) -> tuple[VolumeLocation, str]:
    """Where an output directory (or ``stdouterr``) of a job is in storage, and its state."""
    with app.db.reading() as s:
        job = job_row(s, rg, ws, exp, name)
        if directory_id not in job.locations:
            known = ", ".join(sorted(job.locations))
            raise NotFoundError(
                f"The specified outputDirectoryId {directory_id} is not defined for job {name} (known: {known})",
                code="OutputDirectoryNotFound",
                target="outputdirectoryid",
            )
        data = job.locations[directory_id]
        state = job.execution_state
    if data is None:
        raise NotFoundError(
            f"The specified outputDirectoryId {directory_id} is not present on a mount root",
            code="OutputDirectoryNotOnMount",
            target="outputdirectoryid",
        )
    return VolumeLocation.from_json(data), state

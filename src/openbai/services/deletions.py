"""Deleting workspaces, experiments, clusters and jobs: marked at once, finished later.

A delete has two steps. :func:`begin` is quick: it marks the resource
``provisioningState: deleting`` and asks its jobs to stop. :func:`finish` may take a while:
it waits (up to ``stop_jobs``' timeout, then kills) until those jobs have ended, and removes
the rows. ``bai serve`` answers a DELETE after the first step (202) and runs the second in
the background; the CLI runs both, or with ``--no-wait`` leaves the second to a detached
process. A resource being deleted takes no new children, and a delete left half done (a
server that stopped) is finished by the next :func:`finish_pending`.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openbai.errors import ConflictError, NotFoundError, OpenBaiError
from openbai.installation import App
from openbai.scheduling.node_setup import cancel_setup_runs
from openbai.scheduling.planning import cluster_key
from openbai.services.clusters import cluster_row
from openbai.services.file_servers import mounted_by, stop_workspace_file_servers
from openbai.services.jobs import job_row, request_termination, stop_jobs
from openbai.services.workspaces import experiment_row, workspace_row
from openbai.spec.times import iso
from openbai.store.models import Cluster, Experiment, FileServer, Job, Workspace, utcnow
from openbai.vocabulary import ACTIVE_STATES, ProvisioningState

log = logging.getLogger("openbai.deletions")

Kind = Literal["workspace", "experiment", "cluster", "job"]
_Row = Workspace | Experiment | Cluster | Job


@dataclass(frozen=True)
class Deletion:
    """One delete under way. ``created`` tells the resource from one re-created later under
    the same name (whose existence does not mean this delete is still running)."""

    kind: Kind
    resource_group: str
    workspace: str
    #: the experiment of a job or the experiment's own name; "" for workspaces and clusters
    experiment: str
    name: str
    created: str


def _row(s: Session, d: Deletion) -> _Row:
    if d.kind == "workspace":
        return workspace_row(s, d.resource_group, d.name)
    if d.kind == "experiment":
        return experiment_row(s, d.resource_group, d.workspace, d.name)
    if d.kind == "cluster":
        return cluster_row(s, d.resource_group, d.workspace, d.name)
    return job_row(s, d.resource_group, d.workspace, d.experiment, d.name)


def _job_ids(s: Session, row: _Row) -> list[int]:
    """The jobs that go with the resource."""
    if isinstance(row, Workspace):
        query = select(Job.id).join(Experiment).where(Experiment.workspace_id == row.id)
    elif isinstance(row, Experiment):
        query = select(Job.id).where(Job.experiment_id == row.id)
    elif isinstance(row, Job):
        return [row.id]
    else:
        return []  # a cluster with jobs that still run is not deleted at all
    return list(s.scalars(query))


def _clusters(row: _Row) -> list[Cluster]:
    """The clusters that go with the resource."""
    if isinstance(row, Cluster):
        return [row]
    if isinstance(row, Workspace):
        return list(row.clusters)
    return []


def begin(app: App, kind: Kind, rg: str, ws: str, name: str, *, experiment: str = "") -> Deletion:
    """Mark the resource deleting and ask its jobs to stop; again on one being deleted is fine.

    A cluster that still has queued or running jobs is refused (``ConflictError``)."""
    if kind == "experiment":
        experiment = name
    with app.db.session() as s:
        probe = Deletion(kind, rg, ws, experiment, name, "")
        row = _row(s, probe)
        if isinstance(row, Cluster) and row.provisioning_state != ProvisioningState.DELETING:
            # a job create holds the row while it inserts (PostgreSQL): its job is counted
            s.refresh(row, with_for_update=True)
            _check_idle(s, row)
        if isinstance(row, Workspace) and row.provisioning_state != ProvisioningState.DELETING:
            _check_no_other_jobs(s, row)
            _check_file_servers_unused(s, row)
        deletion = Deletion(kind, rg, ws, experiment, name, _created(row))
        if row.provisioning_state != ProvisioningState.DELETING:
            row.provisioning_state = ProvisioningState.DELETING
            row.provisioning_changed_at = utcnow()
        job_ids = _job_ids(s, row)
    for job_id in job_ids:
        request_termination(app, job_id)
    return deletion


def _check_idle(s: Session, cluster: Cluster) -> None:
    active = s.scalar(
        select(func.count())
        .select_from(Job)
        .where(Job.cluster_id == cluster.id, Job.execution_state.in_(ACTIVE_STATES))
    )
    if active:
        raise ConflictError(
            f"cluster {cluster.name} has {active} queued or running job(s); terminate or delete"
            " them first",
            code="ClusterInUse",
            target=cluster.name,
        )


def _check_no_other_jobs(s: Session, workspace: Workspace) -> None:
    """A workspace's own jobs are stopped with it; a job of another workspace that runs on
    one of its clusters (named by ARM id) is not its to stop: the delete is refused, as the
    cluster's own would be."""
    busy = s.execute(
        select(Cluster.name, func.count())
        .join(Job, Job.cluster_id == Cluster.id)
        .join(Experiment, Job.experiment_id == Experiment.id)
        .where(
            Cluster.workspace_id == workspace.id,
            Experiment.workspace_id != workspace.id,
            Job.execution_state.in_(ACTIVE_STATES),
        )
        .group_by(Cluster.name)
        .order_by(Cluster.name)
    ).first()
    if busy is not None:
        cluster, count = busy
        raise ConflictError(
            f"cluster {cluster} of workspace {workspace.name} has {count} queued or running"
            " job(s) of other workspaces; terminate or delete them first",
            code="ClusterInUse",
            target=cluster,
        )


def _check_file_servers_unused(s: Session, workspace: Workspace) -> None:
    """A workspace's file servers are stopped with it; one that a queued or running job of
    another workspace mounts (by ARM id) would go from under that job: the delete is refused,
    as the file server's own would be (``FileServerInUse``)."""
    names = s.scalars(
        select(FileServer.name)
        .where(FileServer.workspace_id == workspace.id)
        .order_by(FileServer.name)
    )
    for name in names:
        user = mounted_by(
            s, (workspace.resource_group, workspace.name, name), outside_workspace=workspace.id
        )
        if user is not None:
            raise ConflictError(
                f"file server {name} of workspace {workspace.name} is mounted by {user};"
                " delete or change that first",
                code="FileServerInUse",
                target=name,
            )


def finish(app: App, deletion: Deletion) -> None:
    """Wait for the resource's jobs to end, then remove it (nothing to do once it is gone)."""
    try:
        with app.db.reading() as s:
            row = _row(s, deletion)
            if not is_same(row, deletion):
                return
            job_ids = _job_ids(s, row)
    except NotFoundError:
        return
    stop_jobs(app, job_ids)
    _remove_cluster_files(app, deletion)
    with app.db.session() as s:
        try:
            row = _row(s, deletion)
        except NotFoundError:
            return
        if not is_same(row, deletion):
            return
        uids = list(s.scalars(select(Job.uid).where(Job.id.in_(_job_ids(s, row)))))
        clusters = [(c.uid, c.executor) for c in _clusters(row)]
        s.delete(row)
    # setup runs of its clusters still queued (a Slurm host's) would run for no cluster
    for cluster_uid, executor in clusters:
        cancel_setup_runs(app, cluster_uid, executor)
    # what the jobs' nodes exchanged (their plans held secrets) goes with them
    for uid in uids:
        shutil.rmtree(app.settings.runs_root / uid, ignore_errors=True)
    if deletion.kind == "workspace":  # its file servers went with it (their jobs have ended)
        stop_workspace_file_servers(app, deletion.resource_group, deletion.name)


def _remove_cluster_files(app: App, deletion: Deletion) -> None:
    """What the nodes of the clusters going with the resource kept on disk. Done while their
    rows are still marked deleting: no job starts on them, and no cluster of the same name
    (the same node roots) is made meanwhile."""
    with app.db.reading() as s:
        try:
            row = _row(s, deletion)
        except NotFoundError:
            return
        clusters = [(cluster_key(c), c.executor) for c in _clusters(row)]
    for key, executor in clusters:
        try:
            app.executor(executor).remove_cluster_files(key)
        except (OSError, OpenBaiError) as exc:  # the rows go anyway; the files stay, said
            log.warning("could not remove the node files of cluster %s: %s", key, exc)


def is_same(row: _Row, deletion: Deletion) -> bool:
    """Whether ``row`` is the resource being deleted (and still marked so)."""
    return (
        row.provisioning_state == ProvisioningState.DELETING and _created(row) == deletion.created
    )


def state(app: App, deletion: Deletion) -> Literal["InProgress", "Succeeded"]:
    """How the delete goes, as an ARM operation status."""
    try:
        with app.db.reading() as s:
            return "InProgress" if is_same(_row(s, deletion), deletion) else "Succeeded"
    except NotFoundError:
        return "Succeeded"


def pending(app: App) -> list[Deletion]:
    """Deletes begun and not finished (jobs first, so that their parents find them gone)."""
    found: list[Deletion] = []
    with app.db.reading() as s:
        for job in s.scalars(
            select(Job).where(Job.provisioning_state == ProvisioningState.DELETING)
        ):
            exp = job.experiment
            ws = exp.workspace
            found.append(
                Deletion("job", ws.resource_group, ws.name, exp.name, job.name, _created(job))
            )
        for cl in s.scalars(
            select(Cluster).where(Cluster.provisioning_state == ProvisioningState.DELETING)
        ):
            ws = cl.workspace
            found.append(Deletion("cluster", ws.resource_group, ws.name, "", cl.name, _created(cl)))
        for exp in s.scalars(
            select(Experiment).where(Experiment.provisioning_state == ProvisioningState.DELETING)
        ):
            ws = exp.workspace
            found.append(
                Deletion(
                    "experiment", ws.resource_group, ws.name, exp.name, exp.name, _created(exp)
                )
            )
        for w in s.scalars(
            select(Workspace).where(Workspace.provisioning_state == ProvisioningState.DELETING)
        ):
            found.append(Deletion("workspace", w.resource_group, w.name, "", w.name, _created(w)))
    return found


def _created(row: _Row) -> str:
    return iso(row.created_at) or ""


def finish_pending(app: App) -> None:
    """Finish every delete left half done; one that fails is logged and left for next time."""
    for deletion in pending(app):
        try:
            finish(app, deletion)
        except OpenBaiError as exc:
            log.warning("could not finish deleting %s %s: %s", deletion.kind, deletion.name, exc)


def finish_in_background() -> None:
    """Leave the deletes begun to a detached process (the CLI's ``--no-wait``)."""
    subprocess.Popen(
        [sys.executable, "-m", "openbai.services.deletions"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=dict(os.environ),
    )


def _main() -> None:
    from openbai.settings import Settings

    app = App.open(Settings.load())
    try:
        finish_pending(app)
    finally:
        app.close()


if __name__ == "__main__":
    _main()


#: deletes finished at once; more wait for a free thread
DELETE_THREADS = 4


class BackgroundDeletes:
    """The second step of deletes (waiting for jobs to stop), on threads of the server."""

    def __init__(self, app: App):
        self.app = app
        self._pool = ThreadPoolExecutor(DELETE_THREADS, thread_name_prefix="openbai-delete")

    def finish(self, deletion: Deletion) -> None:
        self._pool.submit(self._finish, deletion)

    def finish_pending(self) -> None:
        self._pool.submit(finish_pending, self.app)

    def _finish(self, deletion: Deletion) -> None:
        try:
            finish(self.app, deletion)
        except OpenBaiError as exc:  # left marked deleting: the next server start retries
            log.error("deleting %s %s failed: %s", deletion.kind, deletion.name, exc.message)

    def close(self) -> None:
        """Stop without waiting: unfinished deletes are finished by the next server."""
        self._pool.shutdown(wait=False, cancel_futures=True)

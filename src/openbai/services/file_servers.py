"""File servers: each one is a real NFS server (nfs-ganesha, userspace) exporting a directory
of the installation at ``/mnt/data``, as Batch AI's file server VM exported its data disks.

``create`` starts it and fills ``mountSettings``; clusters (``--nfs``) and jobs
(``fileServers``) mount it through openbai's FUSE filesystem on libnfs. The server runs on
its own; whoever needs it (a job's plan, a file listing, ``show``) starts it again when it is
gone (a restart of the machine). ``delete`` stops it, and so does deleting its workspace;
its data is kept unless asked otherwise (``delete_data``), but not its address and ports: a
server created again under the same name starts afresh (on the address configured then).

A server that cannot be started again (its port taken by another program after a reboot,
say) is listed with ``provisioningState`` ``failed`` and no ``mountSettings``, so that one
broken server does not hide the others; ``show`` of it fails naming why. Batch AI's file
server has no field for a reason, and a state computed on each read is not stored: once the
port is free, the next read starts the server and shows it ``succeeded`` again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from openbai.errors import ConflictError, NotFoundError, StorageError
from openbai.installation import App
from openbai.scheduling.volumes import FileServerKey, file_servers_of, running_file_server
from openbai.services.records import FileServerRecord, Provisioning
from openbai.services.workspaces import check_not_deleting, workspace_row
from openbai.spec import FileServerCreateParameters, check_name, parse
from openbai.storage.nfs_server import EXPORT_PATH, NfsServer, file_server_dir
from openbai.store.models import Cluster, Experiment, FileServer, Job, utcnow
from openbai.vocabulary import ACTIVE_STATES, ProvisioningState


def file_server_row(s: Session, rg: str, ws: str, name: str) -> FileServer:
    workspace = workspace_row(s, rg, ws)
    row = s.scalar(
        select(FileServer).where(FileServer.workspace_id == workspace.id, FileServer.name == name)
    )
    if row is None:
        raise NotFoundError(
            f"The specified file server {name} is not found",
            code="FileServerNotFound",
            target=name,
        )
    return row


def nfs_server(app: App, rg: str, ws: str, name: str) -> NfsServer:
    return NfsServer(file_server_dir(app.settings.home, rg, ws, name))


def _with_mount_settings(app: App, record: FileServerRecord) -> FileServerRecord:
    """The record with where clients mount it, the server started if it went away; a
    StorageError naming the file server when it cannot be started."""
    try:
        state = running_file_server(app, record.resource_group, record.workspace, record.name)
    except StorageError as exc:
        raise type(exc)(
            f"file server {record.name} cannot be started: {exc}", code=exc.code, target=record.name
        ) from exc
    settings = {
        "mountPoint": EXPORT_PATH,
        "fileServerPublicIP": state.host,
        "fileServerInternalIP": state.host,
    }
    return dataclasses.replace(record, mount_settings=settings)


def create_file_server(
    app: App, rg: str, ws: str, name: str, body: Mapping[str, Any]
) -> FileServerRecord:
    check_name(name, field="fileServerName")
    props = parse(FileServerCreateParameters, dict(body)).properties
    with app.db.session() as s:
        workspace = workspace_row(s, rg, ws)
        check_not_deleting(workspace, "workspace")
        exists = s.scalar(
            select(FileServer.id).where(
                FileServer.workspace_id == workspace.id, FileServer.name == name
            )
        )
        if exists is not None:
            raise ConflictError(
                f"file server {name} already exists in workspace {ws}",
                code="FileServerAlreadyExists",
                target=name,
            )
        # started before the row is committed: a server that cannot start leaves no record
        server = nfs_server(app, rg, ws, name)
        # not the ports and address a deleted server of this name used: they may be taken, or
        # OPENBAI_FILE_SERVER_ADDRESS may have changed since
        server.create(host=app.settings.file_server_address)
        try:
            row = FileServer(workspace=workspace, name=name, spec=props.to_public_wire())
            s.add(row)
            s.flush()
            record = FileServerRecord.of(row)
        except BaseException:
            server.stop()
            raise
    return _with_mount_settings(app, record)


def get_file_server(app: App, rg: str, ws: str, name: str) -> FileServerRecord:
    with app.db.reading() as s:
        record = FileServerRecord.of(file_server_row(s, rg, ws, name))
    return _with_mount_settings(app, record)


def list_file_servers(
    app: App, rg: str, ws: str, *, offset: int = 0, limit: int | None = None
) -> list[FileServerRecord]:
    with app.db.reading() as s:
        workspace = workspace_row(s, rg, ws)
        query = (
            select(FileServer)
            .where(FileServer.workspace_id == workspace.id)
            .order_by(FileServer.name)
            .offset(offset)
            .limit(limit)
        )
        records = [FileServerRecord.of(f) for f in s.scalars(query)]
    listed = []
    for record in records:
        try:
            listed.append(_with_mount_settings(app, record))
        except NotFoundError:  # deleted since the page was read
            continue
        except StorageError:  # one that cannot start does not hide the others (show says why)
            listed.append(_failed(record))
    return listed


def _failed(record: FileServerRecord) -> FileServerRecord:
    """The record of a file server whose NFS server cannot be started: failed, as of now,
    with nowhere to mount it."""
    provisioning = Provisioning(
        record.provisioning.created_at, ProvisioningState.FAILED.value, utcnow()
    )
    return dataclasses.replace(record, provisioning=provisioning, mount_settings=None)


def stop_workspace_file_servers(app: App, rg: str, ws: str) -> None:
    """Stop the NFS servers of a deleted workspace's file servers and drop their state (their
    data is kept, as a file server's own ``delete`` keeps it): no daemon outlives its
    workspace."""
    for state in sorted(file_server_dir(app.settings.home, rg, ws, "").glob("*/server.json")):
        NfsServer(state.parent).forget()


def delete_file_server(app: App, rg: str, ws: str, name: str, *, delete_data: bool = False) -> None:
    """Stop and forget the file server; refused (``FileServerInUse``) while a queued or
    running job mounts it: it would hang on a server gone from under it."""
    with app.db.session() as s:
        row = file_server_row(s, rg, ws, name)
        user = mounted_by(s, (rg, ws, name))
        if user is not None:
            raise ConflictError(
                f"file server {name} is mounted by {user}; delete or change that first",
                code="FileServerInUse",
                target=name,
            )
        s.delete(row)
    server = nfs_server(app, rg, ws, name)
    if delete_data:
        server.remove()
    else:
        server.forget()


def mounted_by(
    s: Session, server: FileServerKey, *, outside_workspace: int | None = None
) -> str | None:
    """The queued or running job that mounts the file server, itself or through its
    cluster's nodes; None when none does. A cluster whose jobs have ended may lose it: its
    next job fails when planned, naming the server. With ``outside_workspace`` (a workspace's
    id), only the jobs of other workspaces count (a workspace's delete stops its own)."""
    active = select(Job).where(Job.execution_state.in_(ACTIVE_STATES))
    if outside_workspace is not None:
        active = active.join(Experiment, Job.experiment_id == Experiment.id).where(
            Experiment.workspace_id != outside_workspace
        )
    for job in s.scalars(active.options(joinedload(Job.experiment))):
        cluster = s.get(Cluster, job.cluster_id) if job.cluster_id is not None else None
        setup = (cluster.spec if cluster else {}).get("nodeSetup") or {}
        by_cluster = server in file_servers_of(setup.get("mountVolumes"))
        if by_cluster or server in file_servers_of(job.spec.get("mountVolumes")):
            how = f", through cluster {cluster.name}" if cluster and by_cluster else ""
            state = f"{job.execution_state}{how}"
            where = (
                f" of workspace {job.experiment.workspace.name}"
                if outside_workspace is not None
                else ""
            )
            return f"job {job.name} of experiment {job.experiment.name}{where} ({state})"
    return None

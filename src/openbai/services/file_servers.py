"""File servers: the resource is kept (create, show, list, delete) so that Batch AI clients
and nfs.json files keep working; openbai provisions no VM for it, and jobs cannot mount
one yet (see services/volumes.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openbai.errors import ConflictError, NotFoundError
from openbai.installation import App
from openbai.services.records import FileServerRecord
from openbai.services.workspaces import check_not_deleting, workspace_row
from openbai.spec import FileServerCreateParameters, check_name, parse
from openbai.store.models import FileServer


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
        row = FileServer(workspace=workspace, name=name, spec=props.to_public_wire())
        s.add(row)
        s.flush()
        return FileServerRecord.of(row)


def get_file_server(app: App, rg: str, ws: str, name: str) -> FileServerRecord:
    with app.db.reading() as s:
        return FileServerRecord.of(file_server_row(s, rg, ws, name))


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
        return [FileServerRecord.of(f) for f in s.scalars(query)]


def delete_file_server(app: App, rg: str, ws: str, name: str) -> None:
    with app.db.session() as s:
        s.delete(file_server_row(s, rg, ws, name))

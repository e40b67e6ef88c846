"""openbai's storage endpoints (``/openbai/storage``): accounts, their volumes, and the
storage primitives on files, so that ``bai storage ...`` works through a server.

Volumes are named ``/accounts/{account}/{kind}/{volume}`` with ``kind`` ``blob`` (containers)
or ``file`` (shares). File paths travel in the ``path`` query parameter (``""`` is the
root) and are checked before any backend sees them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response, StreamingResponse

from openbai.api.auth import AUTHENTICATED
from openbai.api.files import read_chunks
from openbai.api.params import JsonBody
from openbai.errors import SpecError
from openbai.http.file_names import shown_name
from openbai.http.json_response import JSONResponse
from openbai.http.service import Service
from openbai.http.threads import iterate_transfer, run_transfer
from openbai.services import accounts
from openbai.spec.times import iso
from openbai.storage.base import FileInfo, StorageBackend, VolumeKind, blob_path
from openbai.storage.names import check_volume_name

router = APIRouter(prefix="/openbai/storage", dependencies=AUTHENTICATED, tags=["openbai storage"])
VOLUME = "/accounts/{account}/{kind}/{volume}"
FilePath = Annotated[str, Query(max_length=1024)]
#: the mtime of an uploaded file, as nanoseconds since the epoch (kept, like a local copy)
MTIME_HEADER = "x-openbai-mtime-ns"


def file_info_json(info: FileInfo) -> dict[str, Any]:
    # a name a job wrote that is no text is listed as the web page shows it: asked for, it is
    # not found, one failed file of a transfer instead of a listing that fails whole
    return {
        "path": shown_name(info.path),
        "isDir": info.is_dir,
        "size": info.size,
        "modified": iso(info.modified),
        "md5": info.md5,
    }


def _backend(app: Any, account: str, kind: VolumeKind, volume: str | None = None) -> StorageBackend:
    if volume is not None:
        check_volume_name(volume)
    return accounts.backend(app, account, kind)


# -- accounts -----------------------------------------------------------------------------------
@router.get("/accounts")
def list_accounts(app: Service) -> JSONResponse:
    return JSONResponse({"value": [a.public() for a in accounts.list_accounts(app)]})


@router.put("/accounts/{account}")
def create_account(app: Service, account: str, body: JsonBody) -> JSONResponse:
    """Body: ``{"kind": "local"|"azure", "resourceGroup": ..., "options": {...}}``."""
    options = body.get("options") or {}
    kind = body.get("kind", "local")
    group = body.get("resourceGroup")
    if (
        not isinstance(options, dict)
        or not isinstance(kind, str)
        or not isinstance(group, str | None)
    ):
        raise SpecError("kind and resourceGroup are strings, options an object", target="body")
    created = accounts.create_account(
        app, account, kind=kind, resource_group=group, options=options
    )
    return JSONResponse(created.public())


@router.get("/accounts/{account}")
def get_account(app: Service, account: str) -> JSONResponse:
    return JSONResponse(accounts.get_account(app, account).public())


@router.delete("/accounts/{account}")
def delete_account(app: Service, account: str) -> Response:
    accounts.delete_account(app, account)
    return Response(status_code=200)


# -- volumes ------------------------------------------------------------------------------------
@router.get("/accounts/{account}/{kind}")
def list_volumes(app: Service, account: str, kind: VolumeKind) -> JSONResponse:
    volumes = _backend(app, account, kind).list_volumes()
    return JSONResponse(
        {"value": [{"name": v.name, "kind": v.kind.value, "account": account} for v in volumes]}
    )


@router.put(VOLUME)
def create_volume(app: Service, account: str, kind: VolumeKind, volume: str) -> JSONResponse:
    created = accounts.create_volume(app, account, kind, volume)
    return JSONResponse({"name": created.name, "kind": created.kind.value, "account": account})


@router.delete(VOLUME)
def delete_volume(app: Service, account: str, kind: VolumeKind, volume: str) -> Response:
    _backend(app, account, kind, volume).delete_volume(volume)
    return Response(status_code=200)


# -- files --------------------------------------------------------------------------------------
@router.get(VOLUME + "/stat")
def stat(
    app: Service, account: str, kind: VolumeKind, volume: str, path: FilePath = ""
) -> JSONResponse:
    info = _backend(app, account, kind, volume).stat(volume, blob_path(path))
    return JSONResponse(file_info_json(info))


@router.get(VOLUME + "/list")
def list_dir(
    app: Service,
    account: str,
    kind: VolumeKind,
    volume: str,
    path: FilePath = "",
    recursive: bool = False,
) -> JSONResponse:
    backend = _backend(app, account, kind, volume)
    entries = backend.list_dir(volume, blob_path(path), recursive=recursive)
    return JSONResponse({"value": [file_info_json(e) for e in entries]})


@router.get(VOLUME + "/content")
def read(
    app: Service,
    account: str,
    kind: VolumeKind,
    volume: str,
    path: FilePath,
    offset: Annotated[int, Query(ge=0)] = 0,
    length: Annotated[int | None, Query(ge=0)] = None,
) -> StreamingResponse:
    """Bytes ``[offset, offset+length)`` of a file (to its end without ``length``)."""
    backend = _backend(app, account, kind, volume)
    clean = blob_path(path, allow_root=False)
    info = backend.stat(volume, clean)
    if info.is_dir:
        raise SpecError(f"{path} is a directory, not a file", target="path")
    end = info.size if length is None else min(info.size, offset + length)
    return StreamingResponse(
        iterate_transfer(read_chunks(backend, volume, clean, offset, end)),
        media_type="application/octet-stream",
    )


@router.put(VOLUME + "/content")
async def upload(
    request: Request,
    app: Service,
    account: str,
    kind: VolumeKind,
    volume: str,
    path: FilePath,
    mtime_ns: Annotated[int | None, Header(alias=MTIME_HEADER, ge=0, le=2**63 - 1)] = None,
) -> JSONResponse:
    """Store the request body at ``path`` (replacing it); the body is spooled to a temp file."""
    clean = blob_path(path, allow_root=False)
    backend = _backend(app, account, kind, volume)
    fd, name = tempfile.mkstemp(prefix=".upload-", dir=app.settings.home)
    spool = Path(name)
    # an embedded volume keeps the spool's mode: a file's usual one (mkstemp's 0600 would let
    # no job user read a dataset uploaded through the server), in a home only its owner enters
    os.fchmod(fd, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            async for chunk in request.stream():
                f.write(chunk)
        if mtime_ns is not None:
            os.utime(spool, ns=(mtime_ns, mtime_ns))
        info = await run_transfer(backend.upload, volume, clean, spool)
    finally:
        spool.unlink(missing_ok=True)
    return JSONResponse(file_info_json(info))


@router.delete(VOLUME + "/content")
def delete(
    app: Service, account: str, kind: VolumeKind, volume: str, path: FilePath = ""
) -> Response:
    _backend(app, account, kind, volume).delete(volume, blob_path(path))
    return Response(status_code=200)


@router.put(VOLUME + "/directory")
def make_dir(app: Service, account: str, kind: VolumeKind, volume: str, path: FilePath) -> Response:
    _backend(app, account, kind, volume).make_dir(volume, blob_path(path))
    return Response(status_code=200)

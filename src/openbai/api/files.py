"""A job's output files over HTTP: listOutputFiles with signed download links, the links
themselves, and following a file as the job writes it.

Files are read through storage (``services.files``), never from a node, so they can be
listed and fetched while the job runs and long after its nodes are gone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.convertors import Convertor, register_url_convertor

from openbai.api.auth import AUTHENTICATED
from openbai.api.paging import Page, page_of
from openbai.api.params import ARM_ROUTE, JOB, ExperimentName, JobName, ResourceGroup, WorkspaceName
from openbai.api.signing import SignedFile, UrlSigner, from_segment
from openbai.api.urls import base_url
from openbai.errors import SpecError
from openbai.http.downloads import download_headers
from openbai.http.json_response import JSONResponse
from openbai.http.service import Service
from openbai.http.threads import iterate_transfer
from openbai.scheduling.locations import VolumeLocation
from openbai.scheduling.volumes import names_no_account
from openbai.services import accounts, files, jobs
from openbai.spec.times import iso
from openbai.storage.base import StorageBackend, VolumeKind, blob_path
from openbai.storage.names import check_volume_name


class AnyPath(Convertor[str]):
    """A path that may hold any character: Starlette's ``path`` stops at a newline, so a
    file a job named with one was listed with a link that did not answer."""

    regex = "[\\s\\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anypath", AnyPath())

router = APIRouter(dependencies=[*AUTHENTICATED, *ARM_ROUTE], tags=["Jobs"])
#: signed links carry their own proof: no token, no api-version
public = APIRouter(tags=["Downloads"])
#: bytes read from storage at once while a download is sent
CHUNK = 1024 * 1024

OutputDirectoryId = Annotated[str, Query(alias="outputdirectoryid", min_length=1, max_length=64)]
Directory = Annotated[str, Query(max_length=1024)]
FileName = Annotated[str, Query(alias="file", min_length=1, max_length=1024)]


def signer(request: Request) -> UrlSigner:
    found: UrlSigner = request.app.state.signer
    return found


@router.post(JOB + "/listOutputFiles", operation_id="Jobs_ListOutputFiles")
@router.get(JOB + "/listOutputFiles", include_in_schema=False)
def list_output_files(
    request: Request,
    app: Service,
    rg: ResourceGroup,
    ws: WorkspaceName,
    exp: ExperimentName,
    name: JobName,
    outputdirectoryid: OutputDirectoryId,
    page: Page,
    directory: Directory = ".",
    linkexpiryinminutes: Annotated[int, Query(ge=5, le=600)] = 60,
) -> JSONResponse:
    """One level of an output directory; each file has a link valid for the given minutes."""
    listed = files.list_output_files(
        app, rg, ws, exp, name, directory_id=outputdirectoryid, path=directory
    )
    location, _ = jobs.location_of(app, rg, ws, exp, name, outputdirectoryid)
    base = location.join(blob_path(directory, field="directory"))
    shown = listed[page.offset : page.offset + page.limit + 1]
    rows = [file_entry(request, base, f, minutes=linkexpiryinminutes) for f in shown]
    return JSONResponse(page_of(request, page, rows))


def file_entry(
    request: Request, folder: VolumeLocation, f: files.OutputFile, *, minutes: int
) -> dict[str, Any]:
    """A File of listOutputFiles: a file in ``folder`` gets a link valid for ``minutes``."""
    if f.is_directory:
        return {"name": f.name, "fileType": "directory"}
    # joined as is: a name may start with "/" (a blob in a folder with an empty name)
    path = f"{folder.path}/{f.name}" if folder.path else f.name
    target = VolumeLocation(folder.account, folder.volume_kind, folder.volume, path)
    signed = SignedFile(target.account, target.volume_kind.value, target.volume, target.path)
    return {
        "name": f.name,
        "fileType": "file",
        "downloadUrl": signer(request).link(base_url(request), signed, minutes=minutes),
        "properties": {"lastModified": iso(f.modified), "contentLength": f.size},
    }


@router.get(JOB + "/streamOutputFile", operation_id="Jobs_StreamOutputFile")
def stream_output_file(
    app: Service,
    rg: ResourceGroup,
    ws: WorkspaceName,
    exp: ExperimentName,
    name: JobName,
    outputdirectoryid: OutputDirectoryId,
    file: FileName,
    directory: Directory = ".",
    offset: Annotated[int, Query(ge=0)] = 0,
) -> StreamingResponse:
    """openbai: the bytes of an output file from ``offset`` on, sent as the job writes them.

    The response ends once the job has ended and every byte was sent; a client that lost
    the connection asks again with ``offset`` = the bytes it already has. A file missing
    once the job has ended is a 404.
    """
    files.check_output_file(
        app, rg, ws, exp, name, file, directory_id=outputdirectoryid, path=directory
    )
    chunks = files.follow_output_file(
        app, rg, ws, exp, name, file, directory_id=outputdirectoryid, path=directory, offset=offset
    )
    return StreamingResponse(
        iterate_transfer(chunks),
        media_type="application/octet-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


# -- signed download links ----------------------------------------------------------------------
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``Range: bytes=a-b`` → (start, end exclusive); None for the whole file (also for an
    invalid range, ``b`` before ``a``, which RFC 9110 lets a server ignore)."""
    match = _RANGE.match(header.strip()) if header else None
    if match is None or not (match[1] or match[2]):
        return None
    if match[1] and match[2] and int(match[2]) < int(match[1]):
        return None
    if not match[1]:  # the last N bytes
        return max(0, size - int(match[2])), size
    start = int(match[1])
    end = min(size, int(match[2]) + 1) if match[2] else size
    return start, end


def read_chunks(
    backend: StorageBackend, volume: str, path: str, start: int, end: int
) -> Iterator[bytes]:
    """Bytes ``[start, end)`` of a file, all from the one file opened at the first read."""
    return backend.open_file(volume, path).stream(start, end, CHUNK)


@public.get("/openbai/download/{account}/{kind}/{volume}/{path:anypath}", operation_id="Download")
def download(
    request: Request,
    app: Service,
    account: str,
    kind: VolumeKind,
    volume: str,
    path: str,
    se: Annotated[int, Query(description="Expiry (Unix time)")],
    sig: Annotated[str, Query(max_length=200, description="HMAC-SHA256 of the link")],
) -> Response:
    """A file behind a link from listOutputFiles: a plain GET (``Range`` supported), sent as
    a download that runs nothing (``http.downloads``), from the one file opened here."""
    account, volume = from_segment(account), from_segment(volume)
    signer(request).check(SignedFile(account, kind.value, volume, path), se, sig)
    if not names_no_account(account):
        check_volume_name(volume)
    clean = blob_path(path, field="path", allow_root=False)
    reader = accounts.backend(app, account, kind).open_file(volume, clean)
    info = reader.info
    if info.is_dir:
        reader.close()
        raise SpecError(f"{path} is a directory", target="path")
    media, headers = download_headers(info.name)
    headers["Accept-Ranges"] = "bytes"
    if info.modified is not None:
        headers["Last-Modified"] = info.modified.strftime("%a, %d %b %Y %H:%M:%S GMT")
    wanted = _byte_range(request.headers.get("range"), info.size)
    if wanted is not None and wanted[0] >= info.size and info.size > 0:
        reader.close()
        return Response(status_code=416, headers={"Content-Range": f"bytes */{info.size}"})
    start, end = wanted or (0, info.size)
    status = 200
    if wanted is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{max(start, end - 1)}/{info.size}"
    headers["Content-Length"] = str(max(0, end - start))
    return StreamingResponse(
        iterate_transfer(reader.stream(start, end, CHUNK)), status, headers, media_type=media
    )

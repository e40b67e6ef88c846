"""A job's output files over HTTP: listOutputFiles with signed download links, the links
themselves, and following a file as the job writes it.

Files are read through storage (``services.files``), never from a node, so they can be
listed and fetched while the job runs and long after its nodes are gone.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.convertors import Convertor, register_url_convertor
from starlette.types import Receive, Scope, Send

from openbai.api.auth import AUTHENTICATED, TokenWatch, WatchedToken
from openbai.api.paging import Page, page_of
from openbai.api.params import ARM_ROUTE, JOB, ExperimentName, JobName, ResourceGroup, WorkspaceName
from openbai.api.signing import SignedFile, UrlSigner, from_segment
from openbai.api.urls import base_url
from openbai.errors import AuthError, SpecError
from openbai.http.downloads import download_headers
from openbai.http.file_names import is_text, shown_name
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

log = logging.getLogger("openbai.api")
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
    """A File of listOutputFiles: a file in ``folder`` gets a link valid for ``minutes``
    (``downloadUrl`` null for a name that is not UTF-8: no link can name it)."""
    name = shown_name(f.name)
    if f.is_directory:
        return {"name": name, "fileType": "directory"}
    link = None
    if is_text(f.name):
        # joined as is: a name may start with "/" (a blob in a folder with an empty name)
        path = f"{folder.path}/{f.name}" if folder.path else f.name
        signed = SignedFile(folder.account, folder.volume_kind.value, folder.volume, path)
        link = signer(request).link(base_url(request), signed, minutes=minutes)
    return {
        "name": name,
        "fileType": "file",
        "downloadUrl": link,
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
    token: WatchedToken,
    directory: Directory = ".",
    offset: Annotated[int, Query(ge=0)] = 0,
) -> StreamingResponse:
    """openbai: the bytes of an output file from ``offset`` on, sent as the job writes them.

    The response ends once the job has ended and every byte was sent; a client that lost
    the connection asks again with ``offset`` = the bytes it already has. A file missing
    once the job has ended is a 404. A token deleted or expired meanwhile breaks the
    connection within seconds (a client asking again is refused).
    """
    files.check_output_file(
        app, rg, ws, exp, name, file, directory_id=outputdirectoryid, path=directory
    )
    chunks = files.follow_output_file(
        app, rg, ws, exp, name, file,
        directory_id=outputdirectoryid, path=directory, offset=offset, stop=token.refused,
    )  # fmt: skip
    return _Followed(
        iterate_transfer(while_admitted(chunks, token)),
        media_type="application/octet-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def while_admitted(chunks: Iterator[bytes], token: TokenWatch) -> Iterator[bytes]:
    """``chunks`` until ``token`` is refused: then its ``AuthError`` (see :class:`_Followed`)."""
    try:
        for chunk in chunks:
            token.check()
            yield chunk
        token.check()  # follow_output_file also ends, early, for a refused token
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


class _Followed(StreamingResponse):
    """A followed file whose token was refused mid-stream is left unfinished: the client sees
    a broken connection, not the end of the file, and asking again it learns why (401).
    Caught here, the refusal costs the log one line of uvicorn's, not a traceback."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except AuthError as exc:
            log.info("%s: the stream was cut: %s", scope.get("path"), exc.message)


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


DOWNLOAD = "/openbai/download/{account}/{kind}/{volume}/{path:anypath}"


@public.get(DOWNLOAD, operation_id="Download")
@public.head(DOWNLOAD, include_in_schema=False)
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
    """A file behind a link from listOutputFiles: a plain GET or HEAD (``Range`` and
    ``If-Range`` supported), sent as a download that runs nothing (``http.downloads``), from
    the one file opened here."""
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
        headers["Last-Modified"] = _http_date(info.modified)
    wanted = _byte_range(request.headers.get("range"), info.size)
    if not _same_version(request.headers.get("if-range"), info.modified):
        wanted = None  # the part the client has is of another version: all of this one
    if wanted is not None and wanted[0] >= info.size:  # an empty file has no byte to send
        reader.close()
        return Response(status_code=416, headers={"Content-Range": f"bytes */{info.size}"})
    start, end = wanted or (0, info.size)
    status = 200
    if wanted is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{info.size}"
    headers["Content-Length"] = str(end - start)
    if request.method == "HEAD":
        reader.close()
        return Response(status_code=status, headers=headers, media_type=media)
    return StreamingResponse(
        iterate_transfer(reader.stream(start, end, CHUNK)), status, headers, media_type=media
    )


def _http_date(moment: datetime) -> str:
    return moment.strftime("%a, %d %b %Y %H:%M:%S GMT")


def _same_version(if_range: str | None, modified: datetime | None) -> bool:
    """Whether a ``Range`` is to be served under ``If-Range`` (RFC 9110 §13.1.5): always
    without one; with one, only when it is the file's ``Last-Modified`` and that is a strong
    validator (the file was not changed within the second before, §8.8.2.2). An entity tag
    never matches: links send none."""
    if if_range is None:
        return True
    if modified is None or time.time() - modified.timestamp() < 1:
        return False
    return if_range.strip() == _http_date(modified)

"""The file explorer of a job's output directories: folders, a file's live view, downloads.

Every path is given as ``?path=`` inside one output directory and goes through the same
checks as the API's (``clean_path``: no ``..``, not absolute, no backslash or NUL; storage
follows no symlink), so nothing outside the job's roots can be listed, viewed or downloaded.
A job's file never runs on this origin: it is shown as text (or an image in an ``<img>``)
and downloaded as a sandboxed attachment.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from openbai.errors import NotFoundError, SpecError
from openbai.http.downloads import SANDBOX, content_disposition, media_type
from openbai.http.service import Service
from openbai.http.threads import iterate_transfer
from openbai.http.views import job_view
from openbai.services import files, jobs
from openbai.storage.base import clean_path
from openbai.vocabulary import FINAL_STATES
from openbai.web.links import Links
from openbai.web.paging import Pager
from openbai.web.params import JOB_PATH, DirectoryId, InnerPath, Job, PageNumber, file_parts
from openbai.web.session import Browser
from openbai.web.templating import is_fragment, render

router = APIRouter()

#: entries of one folder shown per page
ENTRIES_PER_PAGE = 500
#: bytes looked at to tell a binary file (a NUL among them, as git and grep tell) from text,
#: which is offered for download instead of being streamed as text
SNIFF_BYTES = 8000


def breadcrumbs(folder: str) -> list[tuple[str, str]]:
    """``a/b`` → [(``a``, ``a``), (``b``, ``a/b``)]: each folder's name and path."""
    parts = folder.split("/") if folder else []
    return [(part, "/".join(parts[: i + 1])) for i, part in enumerate(parts)]


#: images the file view shows as pictures (in an ``<img>``, where no script of an SVG runs)
PICTURES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml"})


@router.get(JOB_PATH + "/files/{directory}")
def explorer(
    request: Request,
    app: Service,
    session: Browser,
    key: Job,
    directory: DirectoryId,
    path: InnerPath = "",
    page: PageNumber = 1,
    embedded: bool = False,
) -> Response:
    """One folder of an output directory: sub-folders, then files with size and time.
    ``embedded``: the folder is shown in the job's page, whose address its links change
    (the open folder is in the URL: Back and bookmarks work); on its own page a folder's
    links are plain links."""
    folder = clean_path(path, field="path")
    entries = files.list_output_files(
        app, key.rg, key.ws, key.exp, key.job, directory_id=directory, path=folder
    )
    job = job_view(app.settings, jobs.get_job(app, key.rg, key.ws, key.exp, key.job))
    pager = Pager(page, ENTRIES_PER_PAGE)
    context: dict[str, Any] = dict(
        session=session,
        key=key,
        directory=directory,
        folder=folder,
        crumbs=breadcrumbs(folder),
        page=pager.cut(entries[pager.offset : pager.offset + pager.limit], total=len(entries)),
        # a running job's folder is fetched again every few seconds: its files grow and appear
        refresh=job["properties"]["executionState"] not in FINAL_STATES,
        embedded=embedded,
    )
    if is_fragment(request):
        return render(request, "_explorer.html", **context)
    return render(request, "explorer.html", job=job, **context)


@router.get(JOB_PATH + "/files/{directory}/view")
def file_view(
    request: Request,
    app: Service,
    session: Browser,
    key: Job,
    directory: DirectoryId,
    path: InnerPath,
) -> Response:
    """A file's text, followed live until the job has ended; a folder opens the explorer."""
    folder, name = file_parts(path)
    job = job_view(app.settings, jobs.get_job(app, key.rg, key.ws, key.exp, key.job))
    info = None
    binary = False
    try:
        info, head = files.read_output_file(
            app,
            key.rg,
            key.ws,
            key.exp,
            key.job,
            name,
            directory_id=directory,
            path=folder,
            limit=SNIFF_BYTES,
        )
        binary = b"\0" in b"".join(head)
    except SpecError as exc:
        if exc.target != "file":
            raise
        return RedirectResponse(Links.of(request).files(key, directory, path=path), status_code=303)
    except NotFoundError:
        if job["properties"]["executionState"] in FINAL_STATES:
            raise
    return render(
        request,
        "file.html",
        session=session,
        key=key,
        job=job,
        directory=directory,
        folder=folder,
        name=name,
        path=f"{folder}/{name}" if folder else name,
        crumbs=breadcrumbs(folder),
        info=info,
        binary=binary,
        picture=media_type(name) in PICTURES,
    )


@router.get(JOB_PATH + "/files/{directory}/download")
def download(
    app: Service, session: Browser, key: Job, directory: DirectoryId, path: InnerPath
) -> StreamingResponse:
    """The file's bytes as an attachment (never shown inline: it is job data)."""
    folder, name = file_parts(path)
    info, chunks = files.read_output_file(
        app, key.rg, key.ws, key.exp, key.job, name, directory_id=directory, path=folder
    )
    headers = {
        "Content-Disposition": content_disposition(name),
        "Content-Length": str(info.size),
        "Content-Security-Policy": SANDBOX,
        "Cache-Control": "no-store",
    }
    return StreamingResponse(
        iterate_transfer(chunks), media_type="application/octet-stream", headers=headers
    )


@router.get(JOB_PATH + "/files/{directory}/picture")
def picture(
    app: Service, session: Browser, key: Job, directory: DirectoryId, path: InnerPath
) -> StreamingResponse:
    """An image for the file view's ``<img>``; opened on its own it is a sandboxed document
    (an SVG's script does not run)."""
    folder, name = file_parts(path)
    media = media_type(name)
    if media not in PICTURES:
        raise NotFoundError(f"{path} is not a picture", target="path")
    info, chunks = files.read_output_file(
        app, key.rg, key.ws, key.exp, key.job, name, directory_id=directory, path=folder
    )
    headers = {
        "Content-Disposition": content_disposition(name, inline=True),
        "Content-Length": str(info.size),
        "Content-Security-Policy": SANDBOX,
        "Cache-Control": "no-store",
    }
    return StreamingResponse(iterate_transfer(chunks), media_type=media, headers=headers)

"""A job's page: its state, spec (secret names only), environment, outputs and live logs,
and the terminate and delete buttons (POST forms with a CSRF token, confirmed first)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from openbai.errors import NotFoundError
from openbai.http.service import Service
from openbai.http.views import job_view
from openbai.installation import App
from openbai.services import deletions, files, jobs
from openbai.services.deletions import BackgroundDeletes
from openbai.vocabulary import STDOUTERR
from openbai.web.environment import execution_log_name, parse_environment
from openbai.web.links import JobKey, Links
from openbai.web.params import JOB_PATH, InnerPath, Job
from openbai.web.session import Browser, CheckedForm
from openbai.web.templating import render

router = APIRouter()

#: the files of the stdouterr folder the page follows live, in the order of its tabs
LOG_FILES = ("stdout.txt", "stderr.txt", "execution.log")
#: bytes of the execution log read for the environment (it is logged before the job starts)
ENVIRONMENT_BYTES = 256 * 1024


def _job(app: App, key: JobKey) -> dict[str, Any]:
    return job_view(app.settings, jobs.get_job(app, key.rg, key.ws, key.exp, key.job))


def output_directories(job: dict[str, Any]) -> list[str]:
    """``stdouterr`` and the ids of the job's ``outputDirectories``."""
    return [STDOUTERR, *(d["id"] for d in job["properties"].get("outputDirectories") or [])]


@router.get(JOB_PATH)
def job_page(
    request: Request,
    app: Service,
    session: Browser,
    key: Job,
    directory: Annotated[str, Query(alias="dir", max_length=64)] = STDOUTERR,
    path: InnerPath = "",
) -> Response:
    """The job; ``dir`` and ``path`` name the folder of its outputs open in its explorer
    (checked when the explorer loads it)."""
    job = _job(app, key)
    secrets = [s["name"] for s in job["properties"].get("secrets") or []]
    return render(
        request,
        "job.html",
        session=session,
        key=key,
        job=job,
        directories=output_directories(job),
        secrets=secrets,
        log_files=LOG_FILES,
        open_directory=directory,
        open_path=path,
    )


@router.get(JOB_PATH + "/summary")
def job_summary(request: Request, app: Service, session: Browser, key: Job) -> Response:
    """The state part of the page, polled by htmx while the job has not ended."""
    return render(request, "_job_summary.html", session=session, key=key, job=_job(app, key))


@router.get(JOB_PATH + "/environment")
def job_environment(request: Request, app: Service, session: Browser, key: Job) -> Response:
    job = _job(app, key)
    log_name: str | None = None
    variables: dict[str, str] = {}
    error: str | None = None
    try:
        listed = files.list_output_files(app, key.rg, key.ws, key.exp, key.job)
        log_name = execution_log_name(f.name for f in listed if not f.is_directory)
        if log_name is not None:
            _, chunks = files.read_output_file(
                app, key.rg, key.ws, key.exp, key.job, log_name, limit=ENVIRONMENT_BYTES
            )
            variables = parse_environment(b"".join(chunks).decode(errors="replace"))
    except NotFoundError as exc:
        error = exc.message
    return render(
        request,
        "_environment.html",
        key=key,
        job=job,
        log_name=log_name,
        variables=variables,
        error=error,
    )


@router.post(JOB_PATH + "/terminate")
def terminate(request: Request, app: Service, form: CheckedForm, key: Job) -> Response:
    jobs.terminate_job(app, key.rg, key.ws, key.exp, key.job)
    return RedirectResponse(Links.of(request).job(key), status_code=303)


@router.post(JOB_PATH + "/delete")
def delete(request: Request, app: Service, form: CheckedForm, key: Job) -> Response:
    """Terminate (when running) and delete the job; its files stay in storage. The job is
    marked deleting at once and removed once its processes have stopped, as through the API."""
    deletion = deletions.begin(app, "job", key.rg, key.ws, key.job, experiment=key.exp)
    deletes: BackgroundDeletes = request.app.state.deletes
    deletes.finish(deletion)
    return RedirectResponse(Links.of(request).experiment(key.rg, key.ws, key.exp), status_code=303)

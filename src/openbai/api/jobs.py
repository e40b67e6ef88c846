"""``/experiments/{exp}/jobs``: create, show, list, delete, terminate, remote-login nodes.

Creating returns 200 with the job (``provisioningState: succeeded``; the run is followed
through ``executionState``). Terminating and deleting are long-running: 202 with a status
URL (see :mod:`openbai.api.lro`) that reports ``InProgress`` until the job has ended (and,
for a delete, is gone).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from openbai.api import lro
from openbai.api.paging import Page, page_of, slice_of
from openbai.api.params import (
    ARM_ROUTE,
    EXP,
    JOB,
    ExperimentName,
    JobName,
    JsonBody,
    ResourceGroup,
    WorkspaceName,
    body_schema,
)
from openbai.http.caller import Caller
from openbai.http.json_response import JSONResponse
from openbai.http.service import Service
from openbai.http.views import job_view
from openbai.services import jobs, nodes

router = APIRouter(dependencies=ARM_ROUTE, tags=["Jobs"])


@router.get(EXP + "/jobs", operation_id="Jobs_ListByExperiment")
def list_jobs(
    request: Request,
    app: Service,
    rg: ResourceGroup,
    ws: WorkspaceName,
    exp: ExperimentName,
    page: Page,
) -> JSONResponse:
    records = page.fetch_after(jobs.list_jobs, app, rg, ws, exp)
    last = records[page.limit - 1].key if len(records) > page.limit else None
    views = [job_view(app.settings, r) for r in records]
    return JSONResponse(page_of(request, page, views, last_key=last))


@router.put(JOB, operation_id="Jobs_Create", openapi_extra=body_schema("JobCreateParameters"))
def create_job(
    app: Service,
    rg: ResourceGroup,
    ws: WorkspaceName,
    exp: ExperimentName,
    name: JobName,
    body: JsonBody,
    caller: Caller,
) -> JSONResponse:
    record = jobs.create_job(app, rg, ws, exp, name, body, caller=caller)
    return JSONResponse(job_view(app.settings, record))


@router.get(JOB, operation_id="Jobs_Get")
async def get_job(
    app: Service, rg: ResourceGroup, ws: WorkspaceName, exp: ExperimentName, name: JobName
) -> JSONResponse:
    return JSONResponse(job_view(app.settings, jobs.get_job(app, rg, ws, exp, name)))


@router.delete(JOB, operation_id="Jobs_Delete", status_code=202)
def delete_job(
    request: Request,
    app: Service,
    rg: ResourceGroup,
    ws: WorkspaceName,
    exp: ExperimentName,
    name: JobName,
) -> Response:
    """A running job is terminated, then deleted; its files stay in storage."""
    return lro.delete(request, app, "job", rg, ws, name, experiment=exp)


@router.post(JOB + "/terminate", operation_id="Jobs_Terminate", status_code=202)
def terminate_job(
    request: Request,
    app: Service,
    rg: ResourceGroup,
    ws: WorkspaceName,
    exp: ExperimentName,
    name: JobName,
) -> Response:
    job = jobs.terminate_job(app, rg, ws, exp, name)
    return lro.terminating(request, app, rg, ws, exp, job)


@router.post(JOB + "/listRemoteLoginInformation", operation_id="Jobs_ListRemoteLoginInformation")
@router.get(JOB + "/listRemoteLoginInformation", include_in_schema=False)
def list_job_nodes(
    request: Request,
    app: Service,
    rg: ResourceGroup,
    ws: WorkspaceName,
    exp: ExperimentName,
    name: JobName,
    page: Page,
) -> JSONResponse:
    logins = [n.to_wire() for n in nodes.job_nodes(app, rg, ws, exp, name)]
    return JSONResponse(slice_of(request, page, logins))

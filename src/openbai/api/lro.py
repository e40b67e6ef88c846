"""Long-running operations: deletes finished in the background, and the status URL that
clients poll for them and for a job's termination.

A DELETE of a workspace, experiment, cluster or job begins the delete (the resource shows
``provisioningState: deleting``, its jobs are asked to stop) and answers 202 with both of
ARM's headers, ``Azure-AsyncOperation`` and ``Location``, pointing at one status URL, and
``Retry-After: 1``; a background thread finishes the delete. The status URL answers 202
``{"status": "InProgress"}`` while the operation runs and 200 ``{"status": "Succeeded"}``
once it is done, which satisfies both of azure-core's polling strategies (the body's status
for ``Azure-AsyncOperation``, the status code for ``Location``).

An operation id is self-describing (base64url of JSON naming the operation, the resource
and its creation time), so no operation table is kept and a restarted server still answers
for operations begun before: the status is read off the resource, and a resource that is
gone or was re-created under the same name counts as done. Deletes a stopped server left
half done are finished when the next one starts.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Annotated, get_args

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from openbai.api.params import API_VERSION, ARM_ROUTE, SUB, Location
from openbai.api.urls import base_url
from openbai.errors import NotFoundError
from openbai.http.json_response import JSONResponse
from openbai.http.service import Service
from openbai.installation import App
from openbai.services import deletions, jobs
from openbai.services.deletions import BackgroundDeletes, Deletion, Kind
from openbai.services.records import JobRecord
from openbai.spec.times import iso
from openbai.vocabulary import FINAL_STATES

log = logging.getLogger("openbai.api")
router = APIRouter(tags=["Operations"])
#: seconds a client waits between polls of a long-running operation
RETRY_AFTER = "1"


def _encode(parts: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).rstrip(b"=").decode()


def _decode(operation_id: str) -> list[str]:
    try:
        raw = base64.urlsafe_b64decode(operation_id + "=" * (-len(operation_id) % 4))
        parts = json.loads(raw)
    except (binascii.Error, ValueError):
        parts = None
    valid = (
        isinstance(parts, list)
        and all(isinstance(p, str) for p in parts)
        and (
            (len(parts) == 6 and parts[0] == "terminate")
            or (len(parts) == 7 and parts[0] == "delete" and parts[1] in get_args(Kind))
        )
    )
    if not valid:
        raise NotFoundError(
            f"no operation {operation_id!r}", code="OperationNotFound", target="operationId"
        )
    assert isinstance(parts, list)
    return parts


def _status_url(request: Request, app: App, operation: list[str]) -> str:
    path = SUB.replace("{subscriptionId}", app.settings.subscription_id)
    return (
        f"{base_url(request)}{path}/locations/{app.settings.location}"
        f"/operationresults/{_encode(operation)}?api-version={API_VERSION}"
    )


def _accepted(url: str) -> Response:
    return Response(
        status_code=202,
        headers={"Azure-AsyncOperation": url, "Location": url, "Retry-After": RETRY_AFTER},
    )


def terminating(request: Request, app: App, rg: str, ws: str, exp: str, job: JobRecord) -> Response:
    """202 for a job asked to terminate: done when the job has ended."""
    created = iso(job.provisioning.created_at) or ""
    return _accepted(_status_url(request, app, ["terminate", rg, ws, exp, job.name, created]))


#: the error of a resource that is not there, by kind: deleting it is done already
GONE = {
    "workspace": "WorkspaceNotFound",
    "experiment": "ExperimentNotFound",
    "cluster": "ClusterNotFound",
    "job": "JobNotFound",
}


def delete(
    request: Request, app: App, kind: Kind, rg: str, ws: str, name: str, *, experiment: str = ""
) -> Response:
    """Begin deleting a resource: 202 as :func:`deleting`, or 204 when it does not exist (as
    ARM answers; a missing parent is still 404)."""
    try:
        deletion = deletions.begin(app, kind, rg, ws, name, experiment=experiment)
    except NotFoundError as exc:
        if exc.code == GONE[kind]:
            return Response(status_code=204)
        raise
    return deleting(request, app, deletion)


def deleting(request: Request, app: App, deletion: Deletion) -> Response:
    """202 for a delete begun, whose end is left to the server's background threads."""
    background: BackgroundDeletes = request.app.state.deletes
    background.finish(deletion)
    d = deletion
    operation = ["delete", d.kind, d.resource_group, d.workspace, d.experiment, d.name, d.created]
    return _accepted(_status_url(request, app, operation))


def _terminate_status(app: App, rg: str, ws: str, exp: str, name: str, created: str) -> str:
    try:
        job = jobs.get_job(app, rg, ws, exp, name)
    except NotFoundError:
        return "Succeeded"
    running = (
        iso(job.provisioning.created_at) == created and job.execution_state not in FINAL_STATES
    )
    return "InProgress" if running else "Succeeded"


@router.get(
    SUB + "/locations/{location}/operationresults/{operationId}",
    dependencies=ARM_ROUTE,
    summary="Status of a long-running operation (delete, terminate)",
)
def operation_status(
    app: Service,
    location: Location,
    operation_id: Annotated[str, Path(alias="operationId", max_length=2000)],
) -> JSONResponse:
    parts = _decode(operation_id)
    if parts[0] == "terminate":
        status = _terminate_status(app, *parts[1:])
    else:
        _, kind, rg, ws, exp, name, created = parts
        deletion = Deletion(kind, rg, ws, exp, name, created)  # type: ignore[arg-type]
        status = deletions.state(app, deletion)
    body = {"name": operation_id, "status": status}
    if status == "InProgress":
        return JSONResponse(body, status_code=202, headers={"Retry-After": RETRY_AFTER})
    return JSONResponse(body)

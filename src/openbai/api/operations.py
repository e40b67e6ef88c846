"""The provider's own resources: its operation list, usages per location, and the status
of long-running operations (``Azure-AsyncOperation`` URLs).

An operation id is self-describing (base64url of the job it terminates and that job's
creation time), so no operation table is kept: the status is read off the job, and a job
that is gone or was re-created under the same name counts as done.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse

from openbai.api.paging import Page, slice_of
from openbai.api.params import ARM_ROUTE, PROVIDER, SUB, Location, Service, api_version
from openbai.errors import NotFoundError
from openbai.services import jobs, usages
from openbai.services.app import App

router = APIRouter(tags=["Operations"])

_RESOURCES = {
    "clusters": ("Batch AI Clusters", ["read", "write", "delete", "listRemoteLoginInformation"]),
    "jobs": (
        "Batch AI Jobs",
        ["read", "write", "delete", "terminate/action", "listRemoteLoginInformation"],
    ),
    "fileservers": ("Batch AI Fileservers", ["read", "write", "delete"]),
    "workspaces": ("Batch AI Workspaces", ["read", "write", "delete"]),
    "experiments": ("Batch AI Experiments", ["read", "write", "delete"]),
}
_VERBS = {"read": "List or get", "write": "Create or update", "delete": "Delete"}


def _operations() -> list[dict[str, Any]]:
    ops = []
    for resource, (title, actions) in _RESOURCES.items():
        for action in actions:
            verb = _VERBS.get(action, action.removesuffix("/action"))
            ops.append(
                {
                    "name": f"Microsoft.BatchAI/{resource}/{action}",
                    "display": {
                        "provider": "Microsoft Batch AI",
                        "resource": title,
                        "operation": f"{verb} {title}",
                        "description": f"{verb} {title}",
                    },
                    "origin": "user,system",
                }
            )
    return ops


@router.get(
    PROVIDER + "/operations",
    operation_id="Operations_List",
    dependencies=[Depends(api_version)],
)
def list_operations(request: Request, page: Page) -> JSONResponse:
    return JSONResponse(slice_of(request, page, _operations()))


@router.get(
    SUB + "/locations/{location}/usages", operation_id="Usages_List", dependencies=ARM_ROUTE
)
def list_usages(request: Request, app: Service, location: Location, page: Page) -> JSONResponse:
    return JSONResponse(
        slice_of(request, page, [u.to_wire() for u in usages.usages(app, location)])
    )


# -- long-running operations ------------------------------------------------------------------
def _encode(parts: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).rstrip(b"=").decode()


def _decode(operation_id: str) -> list[str]:
    try:
        raw = base64.urlsafe_b64decode(operation_id + "=" * (-len(operation_id) % 4))
        parts = json.loads(raw)
    except (binascii.Error, ValueError):
        parts = None
    if not (isinstance(parts, list) and len(parts) == 6 and all(isinstance(p, str) for p in parts)):
        raise NotFoundError(
            f"no operation {operation_id!r}", code="OperationNotFound", target="operationId"
        )
    return parts


def terminate_operation_url(
    request: Request, app: App, rg: str, ws: str, exp: str, job: dict[str, Any]
) -> str:
    created = str(job["properties"]["creationTime"])
    op = _encode(["terminate", rg, ws, exp, str(job["name"]), created])
    path = SUB.replace("{subscriptionId}", app.settings.subscription_id)
    return str(
        request.base_url.replace(
            path=f"{path}/locations/{app.settings.location}/operationresults/{op}",
            query="api-version=2018-05-01",
        )
    )


@router.get(
    SUB + "/locations/{location}/operationresults/{operationId}",
    dependencies=ARM_ROUTE,
    summary="Status of a long-running operation (terminate)",
)
def operation_status(
    app: Service,
    location: Location,
    operation_id: Annotated[str, Path(alias="operationId", max_length=2000)],
) -> JSONResponse:
    _, rg, ws, exp, name, created = _decode(operation_id)
    try:
        job = jobs.get_job(app, rg, ws, exp, name)
    except NotFoundError:
        job = None
    running = (
        job is not None
        and job["properties"]["creationTime"] == created
        and job["properties"]["executionState"] not in jobs.FINAL_STATES
    )
    return JSONResponse({"name": operation_id, "status": "InProgress" if running else "Succeeded"})

"""The provider's own resources: its operation list and usages per location (long-running
operations are in :mod:`openbai.api.lro`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from openbai.api.paging import Page, slice_of
from openbai.api.params import ARM_ROUTE, PROVIDER, SUB, Location, api_version
from openbai.http.json_response import JSONResponse
from openbai.http.service import Service
from openbai.services import usages

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

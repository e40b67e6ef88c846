"""``/workspaces``: create, update tags, show, list (by subscription or resource group), delete."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from openbai.api import lro
from openbai.api.paging import Page, Paging, page_of, slice_of
from openbai.api.params import (
    ARM_ROUTE,
    RG,
    SUB,
    JsonBody,
    ResourceGroup,
    WorkspaceName,
    body_schema,
)
from openbai.http.caller import Caller
from openbai.http.json_response import JSONResponse
from openbai.http.service import Service
from openbai.http.views import workspace_view
from openbai.installation import App
from openbai.services import workspaces
from openbai.services.tokens import TokenInfo
from openbai.spec import WorkspaceUpdateParameters, parse

router = APIRouter(dependencies=ARM_ROUTE, tags=["Workspaces"])
ONE = RG + "/workspaces/{workspaceName}"


@router.get(SUB + "/workspaces", operation_id="Workspaces_List")
def list_workspaces(request: Request, app: Service, page: Page, caller: Caller) -> JSONResponse:
    return _listed(request, app, page, caller, None)


@router.get(RG + "/workspaces", operation_id="Workspaces_ListByResourceGroup")
def list_workspaces_by_group(
    request: Request, app: Service, rg: ResourceGroup, page: Page, caller: Caller
) -> JSONResponse:
    return _listed(request, app, page, caller, rg)


def _listed(
    request: Request, app: App, page: Paging, caller: TokenInfo, rg: str | None
) -> JSONResponse:
    """A page of workspaces; a token limited to some workspaces sees only those (few: the
    list is filtered whole, then paged)."""
    if caller.scoped:
        rows = [
            workspace_view(app.settings, r)
            for r in workspaces.list_workspaces(app, rg)
            if caller.covers(r.resource_group, r.name)
        ]
        return JSONResponse(slice_of(request, page, rows))
    listed = page.fetch(workspaces.list_workspaces, app, rg)
    return JSONResponse(page_of(request, page, [workspace_view(app.settings, r) for r in listed]))


@router.put(
    ONE, operation_id="Workspaces_Create", openapi_extra=body_schema("WorkspaceCreateParameters")
)
def create_workspace(
    app: Service, rg: ResourceGroup, name: WorkspaceName, body: JsonBody
) -> JSONResponse:
    return JSONResponse(
        workspace_view(
            app.settings,
            workspaces.create_workspace(app, rg, name, body or {"location": app.settings.location}),
        )
    )


@router.patch(
    ONE, operation_id="Workspaces_Update", openapi_extra=body_schema("WorkspaceUpdateParameters")
)
def update_workspace(
    app: Service, rg: ResourceGroup, name: WorkspaceName, body: JsonBody
) -> JSONResponse:
    update = parse(WorkspaceUpdateParameters, body)
    return JSONResponse(
        workspace_view(app.settings, workspaces.update_workspace(app, rg, name, update.tags))
    )


@router.get(ONE, operation_id="Workspaces_Get")
def get_workspace(app: Service, rg: ResourceGroup, name: WorkspaceName) -> JSONResponse:
    return JSONResponse(workspace_view(app.settings, workspaces.get_workspace(app, rg, name)))


@router.delete(ONE, operation_id="Workspaces_Delete", status_code=202)
def delete_workspace(
    request: Request, app: Service, rg: ResourceGroup, name: WorkspaceName
) -> Response:
    """Long-running: the workspace's jobs are stopped, then it goes with its clusters,
    experiments, jobs and file servers (files in storage stay)."""
    return lro.delete(request, app, "workspace", rg, "", name)

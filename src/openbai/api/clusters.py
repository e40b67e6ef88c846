"""``/workspaces/{ws}/clusters``: create, resize (PATCH scaleSettings), show, list, delete,
and the nodes' remote-login information."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from openbai.api import lro
from openbai.api.files import file_entry
from openbai.api.paging import Page, page_of, slice_of
from openbai.api.params import (
    ARM_ROUTE,
    WS,
    ClusterName,
    JsonBody,
    ResourceGroup,
    WorkspaceName,
    body_schema,
)
from openbai.http.caller import Caller
from openbai.http.json_response import JSONResponse
from openbai.http.service import Service
from openbai.http.views import cluster_view
from openbai.services import clusters, nodes, setup_files

router = APIRouter(dependencies=ARM_ROUTE, tags=["Clusters"])
ONE = WS + "/clusters/{clusterName}"


@router.get(WS + "/clusters", operation_id="Clusters_ListByWorkspace")
def list_clusters(
    request: Request, app: Service, rg: ResourceGroup, ws: WorkspaceName, page: Page
) -> JSONResponse:
    return JSONResponse(
        page_of(
            request,
            page,
            [
                cluster_view(app.settings, r)
                for r in page.fetch(clusters.list_clusters, app, rg, ws)
            ],
        )
    )


@router.put(
    ONE, operation_id="Clusters_Create", openapi_extra=body_schema("ClusterCreateParameters")
)
def create_cluster(
    app: Service,
    rg: ResourceGroup,
    ws: WorkspaceName,
    name: ClusterName,
    body: JsonBody,
    caller: Caller,
    use_auto_storage: Annotated[
        bool,
        Query(
            alias="openbai-use-auto-storage",
            description="openbai: create and mount auto-storage (as `az batchai cluster create"
            " --use-auto-storage`).",
        ),
    ] = False,
) -> JSONResponse:
    return JSONResponse(
        cluster_view(
            app.settings,
            clusters.create_cluster(
                app, rg, ws, name, body, use_auto_storage=use_auto_storage, caller=caller
            ),
        )
    )


@router.patch(
    ONE, operation_id="Clusters_Update", openapi_extra=body_schema("ClusterUpdateParameters")
)
def update_cluster(
    app: Service, rg: ResourceGroup, ws: WorkspaceName, name: ClusterName, body: JsonBody
) -> JSONResponse:
    return JSONResponse(
        cluster_view(app.settings, clusters.update_cluster(app, rg, ws, name, body))
    )


@router.get(ONE, operation_id="Clusters_Get")
def get_cluster(
    app: Service, rg: ResourceGroup, ws: WorkspaceName, name: ClusterName
) -> JSONResponse:
    return JSONResponse(cluster_view(app.settings, clusters.get_cluster(app, rg, ws, name)))


@router.delete(ONE, operation_id="Clusters_Delete", status_code=202)
def delete_cluster(
    request: Request, app: Service, rg: ResourceGroup, ws: WorkspaceName, name: ClusterName
) -> Response:
    """Long-running (as on Batch AI); 409 while the cluster has queued or running jobs."""
    return lro.delete(request, app, "cluster", rg, ws, name)


@router.post(
    ONE + "/listRemoteLoginInformation", operation_id="Clusters_ListRemoteLoginInformation"
)
@router.get(ONE + "/listRemoteLoginInformation", include_in_schema=False)
def list_cluster_nodes(
    request: Request,
    app: Service,
    rg: ResourceGroup,
    ws: WorkspaceName,
    name: ClusterName,
    page: Page,
) -> JSONResponse:
    logins = [n.to_wire() for n in nodes.cluster_nodes(app, rg, ws, name)]
    return JSONResponse(slice_of(request, page, logins))


@router.post(ONE + "/listOutputFiles", operation_id="Clusters_ListOutputFiles")
@router.get(ONE + "/listOutputFiles", include_in_schema=False)
def list_setup_task_files(
    request: Request,
    app: Service,
    rg: ResourceGroup,
    ws: WorkspaceName,
    name: ClusterName,
    page: Page,
    directory: Annotated[str, Query(max_length=1024)] = ".",
    linkexpiryinminutes: Annotated[int, Query(ge=5, le=600)] = 60,
) -> JSONResponse:
    """openbai: one level of the setup task's output folder (``az batchai cluster file
    list``), as Jobs_ListOutputFiles lists a job's; empty for a cluster without a setup task,
    409 when the task writes to no mounted volume."""
    folder, listed = setup_files.list_setup_task_files(app, rg, ws, name, path=directory)
    shown = listed[page.offset : page.offset + page.limit + 1]
    rows = (
        [file_entry(request, folder, f, minutes=linkexpiryinminutes) for f in shown]
        if folder
        else []
    )
    return JSONResponse(page_of(request, page, rows))

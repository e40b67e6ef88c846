"""``/workspaces/{ws}/fileServers``: create, show, list, delete (the data kept unless the
request asks otherwise with openbai's ``openbai-delete-data=true``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from openbai.api.paging import Page, page_of
from openbai.api.params import (
    ARM_ROUTE,
    WS,
    FileServerName,
    JsonBody,
    ResourceGroup,
    WorkspaceName,
    body_schema,
)
from openbai.errors import NotFoundError
from openbai.http.json_response import JSONResponse
from openbai.http.service import Service
from openbai.http.views import file_server_view
from openbai.services import file_servers

router = APIRouter(dependencies=ARM_ROUTE, tags=["FileServers"])
ONE = WS + "/fileServers/{fileServerName}"


@router.get(WS + "/fileServers", operation_id="FileServers_ListByWorkspace")
def list_file_servers(
    request: Request, app: Service, rg: ResourceGroup, ws: WorkspaceName, page: Page
) -> JSONResponse:
    return JSONResponse(
        page_of(
            request,
            page,
            [
                file_server_view(app.settings, r)
                for r in page.fetch(file_servers.list_file_servers, app, rg, ws)
            ],
        )
    )


@router.put(
    ONE, operation_id="FileServers_Create", openapi_extra=body_schema("FileServerCreateParameters")
)
def create_file_server(
    app: Service, rg: ResourceGroup, ws: WorkspaceName, name: FileServerName, body: JsonBody
) -> JSONResponse:
    return JSONResponse(
        file_server_view(app.settings, file_servers.create_file_server(app, rg, ws, name, body))
    )


@router.get(ONE, operation_id="FileServers_Get")
def get_file_server(
    app: Service, rg: ResourceGroup, ws: WorkspaceName, name: FileServerName
) -> JSONResponse:
    return JSONResponse(
        file_server_view(app.settings, file_servers.get_file_server(app, rg, ws, name))
    )


@router.delete(ONE, operation_id="FileServers_Delete")
def delete_file_server(
    app: Service,
    rg: ResourceGroup,
    ws: WorkspaceName,
    name: FileServerName,
    delete_data: Annotated[
        bool,
        Query(
            alias="openbai-delete-data",
            description="openbai: delete the files of its export too (by default they are kept"
            " under the installation, in file-servers/RG/WS/NAME/data).",
        ),
    ] = False,
) -> Response:
    """Stop the file server's NFS server and delete the resource. Its files are kept unless
    ``openbai-delete-data=true`` (an openbai extension, as ``openbai-use-auto-storage`` on a
    cluster's create; Batch AI's clients never send it)."""
    try:
        file_servers.delete_file_server(app, rg, ws, name, delete_data=delete_data)
    except NotFoundError as exc:
        if exc.code == "FileServerNotFound":
            return Response(status_code=204)  # as ARM: it is gone either way
        raise
    return Response(status_code=200)

"""``/workspaces/{ws}/experiments``: create (a PUT without body), show, list, delete."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from openbai.api import lro
from openbai.api.paging import Page, page_of
from openbai.api.params import ARM_ROUTE, EXP, WS, ExperimentName, ResourceGroup, WorkspaceName
from openbai.http.json_response import JSONResponse
from openbai.http.service import Service
from openbai.http.views import experiment_view
from openbai.services import workspaces

router = APIRouter(dependencies=ARM_ROUTE, tags=["Experiments"])


@router.get(WS + "/experiments", operation_id="Experiments_ListByWorkspace")
def list_experiments(
    request: Request, app: Service, rg: ResourceGroup, ws: WorkspaceName, page: Page
) -> JSONResponse:
    return JSONResponse(
        page_of(
            request,
            page,
            [
                experiment_view(app.settings, r)
                for r in page.fetch(workspaces.list_experiments, app, rg, ws)
            ],
        )
    )


@router.put(EXP, operation_id="Experiments_Create")
def create_experiment(
    app: Service, rg: ResourceGroup, ws: WorkspaceName, name: ExperimentName
) -> JSONResponse:
    return JSONResponse(
        experiment_view(app.settings, workspaces.create_experiment(app, rg, ws, name))
    )


@router.get(EXP, operation_id="Experiments_Get")
def get_experiment(
    app: Service, rg: ResourceGroup, ws: WorkspaceName, name: ExperimentName
) -> JSONResponse:
    return JSONResponse(experiment_view(app.settings, workspaces.get_experiment(app, rg, ws, name)))


@router.delete(EXP, operation_id="Experiments_Delete", status_code=202)
def delete_experiment(
    request: Request, app: Service, rg: ResourceGroup, ws: WorkspaceName, name: ExperimentName
) -> Response:
    """Long-running: running jobs are terminated first, then the experiment goes with them."""
    return lro.delete(request, app, "experiment", rg, ws, name)

"""A workspace's clusters: size, allocation state and how many nodes are in each state."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from openbai.http.service import Service
from openbai.http.views import cluster_view, workspace_view
from openbai.services import clusters, workspaces
from openbai.web.paging import Pager
from openbai.web.params import PageNumber, ResourceGroup, WorkspaceName
from openbai.web.session import Browser
from openbai.web.templating import render

router = APIRouter()

#: nodeStateCounts keys, in the order the page shows them
NODE_STATES = ("idle", "running", "preparing", "unusable", "leaving")


@router.get("/workspaces/{rg}/{ws}/clusters")
def cluster_list(
    request: Request,
    app: Service,
    session: Browser,
    rg: ResourceGroup,
    ws: WorkspaceName,
    page: PageNumber = 1,
) -> Response:
    workspace = workspace_view(app.settings, workspaces.get_workspace(app, rg, ws))
    pager = Pager(page)
    rows = [
        cluster_view(app.settings, r)
        for r in clusters.list_clusters(app, rg, ws, offset=pager.offset, limit=pager.limit)
    ]
    return render(
        request,
        "clusters.html",
        session=session,
        rg=rg,
        workspace=workspace,
        node_states=NODE_STATES,
        page=pager.cut(rows),
    )

"""Workspaces, their experiments, and an experiment's jobs (filtered by state, paged).

The jobs of an experiment are read a page at a time (offset and limit in the query, plus a
count), so an experiment of 10,000 jobs renders as fast as one of ten.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from openbai.http.caller import Caller
from openbai.http.service import Service
from openbai.http.views import experiment_view, job_view, workspace_view
from openbai.services import jobs, workspaces
from openbai.vocabulary import FINAL_STATES, ExecutionState, ProvisioningState
from openbai.web.links import Links
from openbai.web.paging import Pager
from openbai.web.params import ExperimentName, PageNumber, ResourceGroup, WorkspaceName
from openbai.web.session import Browser
from openbai.web.templating import is_fragment, render

router = APIRouter()

#: execution states a job list can be filtered by, in the order a job goes through them
STATES: tuple[str, ...] = tuple(ExecutionState)
State = Literal["queued", "running", "terminating", "succeeded", "failed"]
#: the orders of a job list (``-``: reversed); newest first unless the user chose another
Sort = Literal[
    "created", "-created", "state", "-state", "start", "-start", "duration", "-duration"
]  # fmt: skip
DEFAULT_SORT: Sort = "-created"
#: the columns a user sorts by, and their first order when clicked (latest, longest first)
SORTABLE = {"created": "-created", "state": "state", "start": "-start", "duration": "-duration"}


@router.get("/")
def home(request: Request, session: Browser) -> Response:
    return RedirectResponse(Links.of(request).to("workspaces"), status_code=303)


@router.get("/workspaces")
def workspace_list(
    request: Request, app: Service, session: Browser, caller: Caller, page: PageNumber = 1
) -> Response:
    pager = Pager(page)
    if caller.scoped:  # only its own workspaces (a few): filtered whole, then paged
        mine = [
            r for r in workspaces.list_workspaces(app) if caller.covers(r.resource_group, r.name)
        ]
        listed = mine[pager.offset : pager.offset + pager.limit]
    else:
        listed = workspaces.list_workspaces(app, offset=pager.offset, limit=pager.limit)
    rows = [workspace_view(app.settings, r) for r in listed]
    return render(request, "workspaces.html", session=session, page=pager.cut(rows))


@router.get("/workspaces/{rg}/{ws}")
def workspace_page(
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
        experiment_view(app.settings, r)
        for r in workspaces.list_experiments(app, rg, ws, offset=pager.offset, limit=pager.limit)
    ]
    return render(
        request,
        "workspace.html",
        session=session,
        rg=rg,
        workspace=workspace,
        page=pager.cut(rows),
    )


@router.get("/workspaces/{rg}/{ws}/experiments/{exp}")
def experiment_page(
    request: Request,
    app: Service,
    session: Browser,
    rg: ResourceGroup,
    ws: WorkspaceName,
    exp: ExperimentName,
    state: Annotated[State | None, Query()] = None,
    sort: Annotated[Sort, Query()] = DEFAULT_SORT,
    page: PageNumber = 1,
) -> Response:
    """The jobs of an experiment, newest first (or in the order ``sort`` names: sorted by
    the store, so every page is a slice of one order), a page at a time."""
    pager = Pager(page)
    rows = [
        job_view(app.settings, r)
        for r in jobs.list_jobs(
            app, rg, ws, exp, offset=pager.offset, limit=pager.limit, state=state, order=sort
        )
    ]
    counts = {s: jobs.count_jobs(app, rg, ws, exp, state=s) for s in STATES}
    listed = pager.cut(rows, total=counts[state] if state else sum(counts.values()))
    context: dict[str, Any] = dict(
        session=session,
        rg=rg,
        ws=ws,
        exp=exp,
        state=state,
        states=STATES,
        # the list's links keep its order (the default is left out of them)
        sort=None if sort == DEFAULT_SORT else sort,
        sorting=sort_links(Links.of(request), rg, ws, exp, state, sort),
        counts=counts,
        page=listed,
        active=any(
            r["properties"]["executionState"] not in FINAL_STATES
            or r["properties"]["provisioningState"] == ProvisioningState.DELETING
            for r in listed.rows
        ),
    )
    if is_fragment(request):
        return render(request, "_jobs.html", **context)
    experiment = experiment_view(app.settings, workspaces.get_experiment(app, rg, ws, exp))
    return render(request, "experiment.html", experiment=experiment, **context)


def sort_links(
    links: Links, rg: str, ws: str, exp: str, state: str | None, sort: str
) -> dict[str, tuple[str, str | None]]:
    """Each sortable column's link (its first order, or the current one reversed) and its
    ``aria-sort`` (None when the list is not sorted by it)."""
    found: dict[str, tuple[str, str | None]] = {}
    for column, first in SORTABLE.items():
        current = sort.removeprefix("-") == column
        target = (sort[1:] if sort.startswith("-") else "-" + sort) if current else first
        shown = None if target == DEFAULT_SORT else target
        aria = ("descending" if sort.startswith("-") else "ascending") if current else None
        found[column] = (links.experiment(rg, ws, exp, state=state, sort=shown), aria)
    return found

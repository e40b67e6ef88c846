"""The URLs of the explorer's pages, built in one place (every segment and query quoted).

::

    /ui/workspaces                                              workspaces
    /ui/workspaces/{rg}/{ws}                                    its experiments
    /ui/workspaces/{rg}/{ws}/clusters                           its clusters
    /ui/workspaces/{rg}/{ws}/experiments/{exp}?state=&page=     jobs
    /ui/workspaces/{rg}/{ws}/experiments/{exp}/jobs/{job}       a job (+ /summary,
        /environment, /metrics, /terminate, /delete)
    .../jobs/{job}/files/{dir}?path=     an output directory     (+ /view, /download, /stream)
    /ui/storage                                                 storage accounts
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from fastapi import Request


@dataclass(frozen=True)
class Links:
    """URLs under the explorer's root (``/ui``, or wherever it is mounted)."""

    root: str

    @classmethod
    def of(cls, request: Request) -> Links:
        return cls(str(request.scope.get("root_path", "")).rstrip("/"))

    def to(self, *segments: str, **query: str | int | None) -> str:
        path = "/".join(quote(s, safe="") for s in segments)
        given = {k: v for k, v in query.items() if v not in (None, "")}
        return f"{self.root}/{path}" + (f"?{urlencode(given)}" if given else "")

    def static(self, name: str) -> str:
        return f"{self.root}/static/{name}"

    def workspace(self, rg: str, ws: str, *rest: str, **query: str | int | None) -> str:
        return self.to("workspaces", rg, ws, *rest, **query)

    def experiment(self, rg: str, ws: str, exp: str, **query: str | int | None) -> str:
        return self.workspace(rg, ws, "experiments", exp, **query)

    def job(self, key: JobKey, *rest: str, **query: str | int | None) -> str:
        return self.workspace(
            key.rg, key.ws, "experiments", key.exp, "jobs", key.job, *rest, **query
        )

    def files(
        self, key: JobKey, directory: str, *rest: str, path: str = "", page: int | None = None
    ) -> str:
        return self.job(key, "files", directory, *rest, path=path, page=page)


@dataclass(frozen=True)
class JobKey:
    """A job's names: resource group, workspace, experiment, job."""

    rg: str
    ws: str
    exp: str
    job: str

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
from urllib.parse import quote, urlencode, urlsplit

from fastapi import Request


@dataclass(frozen=True)
class Links:
    """URLs under the explorer's root (``/ui``, or wherever it is mounted)."""

    root: str

    @classmethod
    def of(cls, request: Request) -> Links:
        """Behind a proxy that serves the server under a prefix (``--public-url
        https://host/prefix``), links carry the prefix the proxy strips."""
        prefix = urlsplit(public_url(request) or "").path.rstrip("/")
        return cls(prefix + str(request.scope.get("root_path", "")).rstrip("/"))

    def here(self, request: Request) -> str:
        """The request's own page, as the browser addressed it (for ``?next=``)."""
        mount = str(request.scope.get("root_path", "")).rstrip("/")
        path = request.url.path
        inner = path[len(mount) :] if path.startswith(mount) else path
        return self.root + inner + (f"?{request.url.query}" if request.url.query else "")

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
        self,
        key: JobKey,
        directory: str,
        *rest: str,
        path: str = "",
        page: int | None = None,
        embedded: bool = False,
    ) -> str:
        """``embedded``: the folder as a part of the job's page (see :meth:`job_folder`)."""
        return self.job(
            key, "files", directory, *rest, path=path, page=page, embedded=1 if embedded else None
        )

    def job_folder(self, key: JobKey, directory: str, path: str = "") -> str:
        """The job's page with a folder of its outputs open (bookmarks, Back)."""
        return self.job(
            key, dir=None if directory == "stdouterr" and not path else directory, path=path
        )


def public_url(request: Request) -> str | None:
    """``bai serve --public-url`` (checked by the server), if given."""
    return getattr(request.app.state, "public_url", None)


def public_origin(request: Request) -> tuple[str, bool]:
    """The origin browsers see this explorer at (``scheme://host[:port]``, as the ``Origin``
    header writes it) and whether that is https: the public URL's when the server is behind
    a proxy, else the request's own (whose scheme a trusted proxy's ``X-Forwarded-Proto``
    sets, ``--forwarded-allow-ips``)."""
    configured = public_url(request)
    if configured:
        parts = urlsplit(configured)
        scheme, host, port = parts.scheme, parts.hostname or "", parts.port
    else:
        scheme, host, port = request.url.scheme, request.url.hostname or "", request.url.port
    shown = f"[{host}]" if ":" in host else host
    if port is not None and port != {"http": 80, "https": 443}.get(scheme):
        shown += f":{port}"
    return f"{scheme}://{shown}", scheme == "https"


@dataclass(frozen=True)
class JobKey:
    """A job's names: resource group, workspace, experiment, job."""

    rg: str
    ws: str
    exp: str
    job: str

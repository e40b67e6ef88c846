"""ARM resource ids of Microsoft.BatchAI resources: building and reading them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from openbai.errors import SpecError

PROVIDER = "Microsoft.BatchAI"


def group_prefix(subscription: str, resource_group: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/{PROVIDER}"


def workspace_id(sub: str, rg: str, ws: str) -> str:
    return f"{group_prefix(sub, rg)}/workspaces/{ws}"


def experiment_id(sub: str, rg: str, ws: str, exp: str) -> str:
    return f"{workspace_id(sub, rg, ws)}/experiments/{exp}"


def job_id(sub: str, rg: str, ws: str, exp: str, job: str) -> str:
    return f"{experiment_id(sub, rg, ws, exp)}/jobs/{job}"


def cluster_id(sub: str, rg: str, ws: str, cluster: str) -> str:
    return f"{workspace_id(sub, rg, ws)}/clusters/{cluster}"


def file_server_id(sub: str, rg: str, ws: str, fs: str) -> str:
    return f"{workspace_id(sub, rg, ws)}/fileServers/{fs}"


@dataclass(frozen=True)
class ClusterRef:
    resource_group: str
    workspace: str
    name: str
    #: the subscription an ARM id named (None: by name, in the job's own)
    subscription: str | None = None


_CLUSTER_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.BatchAI"
    r"/workspaces/(?P<ws>[^/]+)/clusters/(?P<name>[^/]+)/?$",
    re.IGNORECASE,
)


def parse_cluster_ref(value: str, *, resource_group: str, workspace: str, field: str) -> ClusterRef:
    """A cluster given by name (in the job's workspace) or by ARM id (any workspace)."""
    if "/" not in value:
        return ClusterRef(resource_group, workspace, value)
    match = _CLUSTER_ID.match(value)
    if match is None:
        raise SpecError(
            f"{field}: expected a cluster name or an id like /subscriptions/<sub>/resourceGroups/<rg>"
            f"/providers/Microsoft.BatchAI/workspaces/<ws>/clusters/<name>, got {value!r}",
            target=field,
        )
    return ClusterRef(match["rg"], match["ws"], match["name"], match["sub"])


def require_this_subscription(
    given: str | None, ours: str, *, what: str, field: str, code: str
) -> None:
    """Refuse an ARM id of another subscription than the installation's (ids compare without
    case): it names nothing here. ``given`` None: named without an id, so here."""
    if given is not None and given.lower() != ours.lower():
        raise SpecError(
            f"{field}: the {what} is in subscription {given}, not this installation's ({ours})",
            target=field,
            code=code,
        )

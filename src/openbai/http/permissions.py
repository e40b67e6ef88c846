"""Who may call which route: one rule for every route of the REST API and of the web page.

Roles are Batch AI's RBAC roles: a **reader** reads (gets, lists, lists and streams files), a
**contributor** also creates, updates, deletes, terminates and runs commands on nodes, an
**owner** also creates and deletes storage accounts and reads the audit log. A token limited to workspaces reaches only
routes inside them (and the lists of workspaces, which show it only its own); routes outside
every workspace (the installation's info, the operations, usages, storage volumes and files)
are open to it by its role, except the installation-wide ones (storage accounts' create and
delete, the audit log), which need a token limited to no workspace. A refusal is 403
``AuthorizationFailed``, also for a workspace out of the token's reach (not 404: the
workspace's name is the caller's own, so saying it is out of reach reveals nothing).

A route without a rule is refused (and ``tests/api/test_roles.py`` walks every route to see
that none is without).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from openbai.errors import AuthorizationError
from openbai.services import ids
from openbai.services.tokens import Role, TokenInfo


class Reach(StrEnum):
    PUBLIC = "public"  #: no token (liveness, signed download links, the login form)
    WORKSPACE = "workspace"  #: inside the workspace its path names
    LISTING = "listing"  #: a list of workspaces: a limited token sees only its own
    SHARED = "shared"  #: outside every workspace, open to every token by its role
    INSTALLATION = "installation"  #: the whole installation: tokens limited to no workspace


@dataclass(frozen=True)
class Rule:
    #: what the audit log calls it (``job.terminate``)
    action: str
    #: the least role allowed; None for a public route
    role: Role | None
    reach: Reach
    #: recorded in the audit log
    mutates: bool = False


def read(action: str, reach: Reach = Reach.WORKSPACE) -> Rule:
    return Rule(action, Role.READER, reach)


def write(action: str, role: Role = Role.CONTRIBUTOR, reach: Reach = Reach.WORKSPACE) -> Rule:
    return Rule(action, role, reach, mutates=True)


PUBLIC = Rule("public", None, Reach.PUBLIC)

_SUB = "/subscriptions/{subscriptionId}/providers/Microsoft.BatchAI"
_RG = (
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.BatchAI"
)
_WS = _RG + "/workspaces/{workspaceName}"
_EXP = _WS + "/experiments/{experimentName}"
_CLUSTER = _WS + "/clusters/{clusterName}"
_FS = _WS + "/fileServers/{fileServerName}"
_JOB = _EXP + "/jobs/{jobName}"
_ACCOUNT = "/openbai/storage/accounts/{account}"
_VOLUME = _ACCOUNT + "/{kind}/{volume}"

#: (method, path of the route as the API declares it) -> rule
API_RULES: Mapping[tuple[str, str], Rule] = {
    ("GET", "/healthz"): PUBLIC,
    ("HEAD", "/healthz"): PUBLIC,
    ("GET", "/openbai/download/{account}/{kind}/{volume}/{path:anypath}"): PUBLIC,
    ("HEAD", "/openbai/download/{account}/{kind}/{volume}/{path:anypath}"): PUBLIC,
    ("GET", "/openbai/info"): read("installation.show", Reach.SHARED),
    ("GET", "/openapi.json"): read("installation.openapi", Reach.SHARED),
    ("GET", "/openbai/audit"): Rule("audit.list", Role.OWNER, Reach.INSTALLATION),
    ("GET", "/providers/Microsoft.BatchAI/operations"): read("operation.list", Reach.SHARED),
    ("GET", _SUB + "/locations/{location}/usages"): read("usage.list", Reach.SHARED),
    ("GET", _SUB + "/locations/{location}/operationresults/{operationId}"): read(
        "operation.show", Reach.SHARED
    ),
    ("GET", _SUB + "/workspaces"): read("workspace.list", Reach.LISTING),
    ("GET", _RG + "/workspaces"): read("workspace.list", Reach.LISTING),
    ("PUT", _WS): write("workspace.create"),
    ("PATCH", _WS): write("workspace.update"),
    ("GET", _WS): read("workspace.show"),
    ("DELETE", _WS): write("workspace.delete"),
    ("GET", _WS + "/experiments"): read("experiment.list"),
    ("PUT", _EXP): write("experiment.create"),
    ("GET", _EXP): read("experiment.show"),
    ("DELETE", _EXP): write("experiment.delete"),
    ("GET", _WS + "/clusters"): read("cluster.list"),
    ("PUT", _CLUSTER): write("cluster.create"),
    ("PATCH", _CLUSTER): write("cluster.update"),
    ("GET", _CLUSTER): read("cluster.show"),
    ("DELETE", _CLUSTER): write("cluster.delete"),
    ("GET", _CLUSTER + "/listRemoteLoginInformation"): read("cluster.nodes"),
    ("POST", _CLUSTER + "/listRemoteLoginInformation"): read("cluster.nodes"),
    ("GET", _CLUSTER + "/listOutputFiles"): read("cluster.files"),
    ("POST", _CLUSTER + "/listOutputFiles"): read("cluster.files"),
    ("POST", _CLUSTER + "/nodes/{nodeId}/exec"): write("cluster.node.exec"),
    ("GET", _WS + "/fileServers"): read("fileserver.list"),
    ("PUT", _FS): write("fileserver.create"),
    ("GET", _FS): read("fileserver.show"),
    ("DELETE", _FS): write("fileserver.delete"),
    ("GET", _EXP + "/jobs"): read("job.list"),
    ("PUT", _JOB): write("job.create"),
    ("GET", _JOB): read("job.show"),
    ("DELETE", _JOB): write("job.delete"),
    ("POST", _JOB + "/terminate"): write("job.terminate"),
    ("GET", _JOB + "/listRemoteLoginInformation"): read("job.nodes"),
    ("POST", _JOB + "/listRemoteLoginInformation"): read("job.nodes"),
    ("GET", _JOB + "/listOutputFiles"): read("job.files"),
    ("POST", _JOB + "/listOutputFiles"): read("job.files"),
    ("GET", _JOB + "/streamOutputFile"): read("job.stream"),
    ("POST", _JOB + "/nodes/{nodeId}/exec"): write("job.node.exec"),
    ("GET", "/openbai/storage/accounts"): read("storage.account.list", Reach.SHARED),
    ("PUT", _ACCOUNT): write("storage.account.create", Role.OWNER, Reach.INSTALLATION),
    ("GET", _ACCOUNT): read("storage.account.show", Reach.SHARED),
    ("DELETE", _ACCOUNT): write("storage.account.delete", Role.OWNER, Reach.INSTALLATION),
    ("GET", _ACCOUNT + "/{kind}"): read("storage.volume.list", Reach.SHARED),
    ("PUT", _VOLUME): write("storage.volume.create", reach=Reach.SHARED),
    ("DELETE", _VOLUME): write("storage.volume.delete", reach=Reach.SHARED),
    ("GET", _VOLUME + "/stat"): read("storage.file.show", Reach.SHARED),
    ("GET", _VOLUME + "/list"): read("storage.file.list", Reach.SHARED),
    ("GET", _VOLUME + "/content"): read("storage.file.read", Reach.SHARED),
    ("PUT", _VOLUME + "/content"): write("storage.file.write", reach=Reach.SHARED),
    ("DELETE", _VOLUME + "/content"): write("storage.file.delete", reach=Reach.SHARED),
    ("PUT", _VOLUME + "/directory"): write("storage.directory.create", reach=Reach.SHARED),
}

_WEB_JOB = "/workspaces/{rg}/{ws}/experiments/{exp}/jobs/{job}"
_WEB_FILES = _WEB_JOB + "/files/{directory}"

#: (method, path inside the web page's application, which is mounted at /ui) -> rule
WEB_RULES: Mapping[tuple[str, str], Rule] = {
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,  # recorded by the login itself, once it knows the token
    ("POST", "/logout"): Rule("session.logout", Role.READER, Reach.SHARED, mutates=True),
    ("GET", "/"): read("page.home", Reach.SHARED),
    ("GET", "/workspaces"): read("workspace.list", Reach.LISTING),
    ("GET", "/workspaces/{rg}/{ws}"): read("workspace.show"),
    ("GET", "/workspaces/{rg}/{ws}/experiments/{exp}"): read("experiment.show"),
    ("GET", "/workspaces/{rg}/{ws}/clusters"): read("cluster.list"),
    ("GET", "/storage"): read("storage.account.list", Reach.SHARED),
    # the stream a browser's tabs share: each view in it is checked as its job's own stream
    ("GET", "/live"): read("job.stream", Reach.SHARED),
    ("GET", _WEB_JOB): read("job.show"),
    ("GET", _WEB_JOB + "/summary"): read("job.show"),
    ("GET", _WEB_JOB + "/environment"): read("job.show"),
    ("GET", _WEB_JOB + "/metrics"): read("job.stream"),
    ("GET", _WEB_JOB + "/live"): read("job.stream"),
    ("POST", _WEB_JOB + "/terminate"): write("job.terminate"),
    ("POST", _WEB_JOB + "/delete"): write("job.delete"),
    ("GET", _WEB_FILES): read("job.files"),
    ("GET", _WEB_FILES + "/view"): read("job.stream"),
    ("GET", _WEB_FILES + "/download"): read("job.stream"),
    ("GET", _WEB_FILES + "/picture"): read("job.stream"),
    ("GET", _WEB_FILES + "/stream"): read("job.stream"),
    ("GET", _WEB_FILES + "/earlier"): read("job.stream"),
}

_NO_RULE = Rule("unknown", Role.OWNER, Reach.INSTALLATION)


def rule_for(rules: Mapping[tuple[str, str], Rule], method: str, path: str) -> Rule:
    """The rule of a route; a route nobody wrote a rule for is refused to all but unlimited
    owners (and the route walk of the tests fails)."""
    if method == "HEAD":
        method = "GET"
    return rules.get((method, path), _NO_RULE)


def _workspace(params: Mapping[str, str]) -> tuple[str, str] | None:
    rg = params.get("resourceGroupName", params.get("rg"))
    ws = params.get("workspaceName", params.get("ws"))
    return None if rg is None or ws is None else (rg, ws)


def authorize(token: TokenInfo, rule: Rule, params: Mapping[str, str]) -> None:
    """Refuse (``AuthorizationError``) what ``token`` may not do on a route of ``rule``."""
    if rule.role is None:
        return
    if not token.role.includes(rule.role):
        raise AuthorizationError(
            f"the token {token.name!r} has the role {token.role.value}, which may not"
            f" {rule.action} (that needs {rule.role.value})"
        )
    if not token.scoped:
        return
    limited = f"the token {token.name!r} is limited to the workspaces {', '.join(token.workspaces)}"
    if rule.reach is Reach.INSTALLATION:
        raise AuthorizationError(f"{limited}; {rule.action} needs a token for every workspace")
    if rule.reach is Reach.WORKSPACE:
        where = _workspace(params)
        if where is None or not token.covers(*where):
            name = "/".join(where) if where else "?"
            raise AuthorizationError(f"{limited}, not {name}")


def resource_of(subscription: str, params: Mapping[str, str], file_path: str | None) -> str:
    """What the audit log names as the resource: the ARM id of a Batch AI resource (the same
    whether the API or the web page was used), or ``/openbai/storage/...`` for storage."""
    if "account" in params:
        parts = ["/openbai/storage/accounts", params["account"]]
        if "kind" in params:
            parts.append(params["kind"])
        if "volume" in params:
            parts.append(params["volume"])
        if file_path:
            parts.append(file_path.strip("/"))
        return "/".join(parts)
    where = _workspace(params)
    if where is None:
        return ""
    rg, ws = where
    exp = params.get("experimentName", params.get("exp"))
    job = params.get("jobName", params.get("job"))
    if exp is not None and job is not None:
        return ids.job_id(subscription, rg, ws, exp, job)
    if exp is not None:
        return ids.experiment_id(subscription, rg, ws, exp)
    if "clusterName" in params:
        return ids.cluster_id(subscription, rg, ws, params["clusterName"])
    if "fileServerName" in params:
        return ids.file_server_id(subscription, rg, ws, params["fileServerName"])
    return ids.workspace_id(subscription, rg, ws)

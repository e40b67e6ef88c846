"""Roles, workspaces and expiry of tokens, route by route: every route of the API has a rule,
a reader is refused every mutating one (403 ``AuthorizationFailed``, nothing changed), a
contributor what only owners may do, a token limited to workspaces everything outside them,
and an expired token is a 401."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from polling import wait_until
from routes import declared_routes

from openbai.errors import AuthError
from openbai.http.permissions import API_RULES, Reach, rule_for
from openbai.installation import App
from openbai.services import tokens
from openbai.services.tokens import Role

from .conftest import TestClient
from .support import Arm, job_body

SAMPLE = {
    "resourceGroupName": "rg",
    "workspaceName": "ws",
    "experimentName": "exp",
    "clusterName": "c1",
    "jobName": "j",
    "fileServerName": "fs",
    "location": "local",
    "operationId": "op",
    "account": "acct",
    "kind": "file",
    "volume": "logs",
    "nodeId": "c1-0",
}


def api_routes(client: TestClient) -> list[tuple[str, str]]:
    """(method, declared path) of every route of the API (the web page's are in tests/web)."""
    return declared_routes(client.app)


def url_of(path: str, arm: Arm) -> str:
    return path.format(subscriptionId=arm.subscription, **SAMPLE) + "?api-version=2018-05-01"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make(service: App, name: str, role: Role, *workspaces: str) -> dict[str, str]:
    return bearer(tokens.create_token(service, name, role=role, workspaces=workspaces)[1])


def test_every_route_has_a_rule_and_every_rule_a_route(client: TestClient) -> None:
    routes = api_routes(client)
    assert len(routes) >= 50
    missing = [r for r in routes if r not in API_RULES]
    assert missing == []
    stale = [key for key in API_RULES if key not in routes]
    assert stale == []


def test_a_route_without_a_rule_is_for_unlimited_owners_only() -> None:
    rule = rule_for(API_RULES, "POST", "/nowhere")
    assert rule.role is Role.OWNER and rule.reach is Reach.INSTALLATION


def test_a_reader_is_refused_every_mutating_route(
    client: TestClient, service: App, ws: Arm, logs_share: str
) -> None:
    reader = make(service, "reader", Role.READER)
    mutating = [
        (m, p)
        for m, p in api_routes(client)
        if (rule := API_RULES[(m, p)]).role is not None and rule.role is not Role.READER
    ]
    assert len(mutating) >= 15
    for method, path in mutating:
        response = client.request(method, url_of(path, ws), headers=reader, json={})
        assert response.status_code == 403, (method, path, response.text)
        error = response.json()["error"]
        assert error["code"] == "AuthorizationFailed", (method, path)
        assert "reader" in error["message"]
    # nothing changed: the workspace, experiment, cluster and account are all still there
    for segments in (("workspaces", "ws"), ("workspaces", "ws", "clusters", "c1")):
        assert client.get(ws.rg(*segments)).status_code == 200
    assert client.get(ws.rg("workspaces", "ws", "experiments", "exp")).status_code == 200
    assert client.get("/openbai/storage/accounts/acct").status_code == 200


def test_a_reader_reads(client: TestClient, service: App, ws: Arm) -> None:
    reader = make(service, "reader", Role.READER)
    assert client.get(ws.rg("workspaces", "ws"), headers=reader).status_code == 200
    listed = client.get(ws.rg("workspaces", "ws", "clusters"), headers=reader)
    assert [c["name"] for c in listed.json()["value"]] == ["c1"]
    assert client.get("/openbai/info", headers=reader).status_code == 200


def test_a_contributor_changes_workspaces_but_not_the_installation(
    client: TestClient, service: App, ws: Arm, logs_share: str
) -> None:
    contributor = make(service, "contributor", Role.CONTRIBUTOR)
    url = ws.rg("workspaces", "ws", "experiments", "exp2")
    assert client.put(url, headers=contributor).status_code == 200
    for method, path in [
        ("PUT", "/openbai/storage/accounts/other"),
        ("DELETE", "/openbai/storage/accounts/acct"),
        ("GET", "/openbai/audit"),
    ]:
        response = client.request(method, path, headers=contributor, json={})
        assert response.status_code == 403, (method, path)
        assert response.json()["error"]["code"] == "AuthorizationFailed"
        assert "owner" in response.json()["error"]["message"]
    assert client.get("/openbai/storage/accounts/acct").status_code == 200
    # volumes and files are a contributor's to change
    volume = "/openbai/storage/accounts/acct/file/logs"
    put = client.put(f"{volume}/content?path=a.txt", headers=contributor, content=b"hi")
    assert put.status_code < 300, put.text
    assert client.get(f"{volume}/content?path=a.txt", headers=contributor).content == b"hi"


def test_a_token_limited_to_a_workspace_reaches_only_it(
    client: TestClient, service: App, ws: Arm, logs_share: str
) -> None:
    assert client.put(ws.rg("workspaces", "other"), json={"location": "local"}).status_code == 200
    mine = make(service, "mine", Role.CONTRIBUTOR, "rg/ws")
    assert client.get(ws.rg("workspaces", "ws"), headers=mine).status_code == 200
    assert (
        client.put(ws.rg("workspaces", "ws", "experiments", "e2"), headers=mine).status_code == 200
    )
    for method, url in [
        ("GET", ws.rg("workspaces", "other")),
        ("PUT", ws.rg("workspaces", "other", "experiments", "e2")),
        ("DELETE", ws.rg("workspaces", "other")),
        ("GET", ws.rg("workspaces", "other", "clusters")),
        ("PUT", ws.rg("workspaces", "new")),  # not even one that does not exist yet
        ("PUT", "/openbai/storage/accounts/acct2"),  # installation-wide, even for an owner
        ("GET", "/openbai/audit"),
    ]:
        response = client.request(method, url, headers=mine, json={})
        assert response.status_code == 403, (method, url)
        assert response.json()["error"]["code"] == "AuthorizationFailed"
    assert client.get(ws.rg("workspaces", "other")).status_code == 200
    # lists show it its own workspace only, by resource group and by subscription
    for url in (ws.rg("workspaces"), ws.sub("workspaces")):
        assert [w["name"] for w in client.get(url, headers=mine).json()["value"]] == ["ws"]
    assert len(client.get(ws.sub("workspaces")).json()["value"]) == 2
    # outside every workspace, its role decides
    assert client.get("/openbai/storage/accounts", headers=mine).status_code == 200


def test_an_owner_limited_to_a_workspace_is_no_installation_owner(
    client: TestClient, service: App, ws: Arm
) -> None:
    owner = make(service, "ws-owner", Role.OWNER, "ws")  # the default resource group
    assert tokens.verify_token(service, owner["Authorization"][7:]).workspaces == ("default/ws",)
    assert (
        client.get(ws.rg("workspaces", "ws"), headers=owner).status_code == 403
    )  # rg, not default
    response = client.put("/openbai/storage/accounts/acct2", headers=owner, json={})
    assert response.status_code == 403


def test_an_expired_token_is_401(client: TestClient, service: App, ws: Arm) -> None:
    info, token = tokens.create_token(service, "brief", lifetime=timedelta(milliseconds=300))
    assert info.expires is not None

    def refused() -> Any:
        try:
            tokens.verify_token(service, token)
        except AuthError as exc:
            return exc
        return None

    wait_until(refused, "the token's expiry", timeout=10)
    response = client.get(ws.rg("workspaces", "ws"), headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "ExpiredAuthenticationToken"


@pytest.mark.parametrize("value", ["0d", "-1h", "soon", "12x", "P", ""])
def test_a_wrong_lifetime_names_the_field(value: str) -> None:
    from openbai.errors import SpecError

    with pytest.raises(SpecError) as caught:
        tokens.parse_lifetime(value, field="--expires-in")
    assert caught.value.target == "--expires-in" and "--expires-in" in caught.value.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("PT45M", timedelta(minutes=45)),
    ],
)
def test_lifetimes(value: str, expected: timedelta) -> None:
    assert tokens.parse_lifetime(value) == expected


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        # its jobs run with the server's identity: as root, the server's keys are theirs
        ("sandbox", False),
        # it may take the GPUs that other workspaces' clusters hold
        ("shareGpus", True),
    ],
)
def test_a_cluster_without_a_sandbox_or_sharing_gpus_is_for_the_installations_owner_only(
    client: TestClient, service: App, ws: Arm, setting: str, value: bool
) -> None:
    body = {"properties": {"openbai": {setting: value}}}
    url = ws.rg("workspaces", "ws", "clusters", "bare")
    for token in (
        make(service, "contributor", Role.CONTRIBUTOR),
        make(service, "ws-owner", Role.OWNER, "rg/ws"),
    ):
        refused = client.put(url, headers=token, json=body)
        assert refused.status_code == 403, refused.text
        error = refused.json()["error"]
        assert error["code"] == "AuthorizationFailed"
        assert error["target"] == f"properties.openbai.{setting}"
        assert client.get(url).status_code == 404  # nothing made
    made = client.put(url, json=body)
    assert made.status_code == 200, made.text
    assert made.json()["properties"]["openbai"][setting] is value


def test_a_limited_token_reaches_no_other_workspace_through_what_a_job_names(
    client: TestClient, service: App, ws: Arm, logs_share: str
) -> None:
    other = ws.rg("workspaces", "other")
    assert client.put(other, json={"location": "local"}).status_code == 200
    body = {"properties": {"scaleSettings": {"manual": {"targetNodeCount": 1}}}}
    assert client.put(ws.rg("workspaces", "other", "clusters", "c2"), json=body).status_code == 200
    foreign = f"/subscriptions/{ws.subscription}/resourceGroups/rg/providers/Microsoft.BatchAI/workspaces/other"
    mine = make(service, "mine", Role.CONTRIBUTOR, "rg/ws")

    def job_url(name: str) -> str:
        return ws.rg("workspaces", "ws", "experiments", "exp", "jobs", name)

    on_foreign_cluster = job_body("true", cluster={"id": f"{foreign}/clusters/c2"})
    file_servers = {
        "fileServers": [
            {"fileServer": {"id": f"{foreign}/fileServers/fs"}, "relativeMountPath": "nfs"}
        ],
        "azureFileShares": on_foreign_cluster["properties"]["mountVolumes"]["azureFileShares"],
    }
    with_foreign_server = job_body("true", mountVolumes=file_servers)
    for name, job, field in [
        ("j1", on_foreign_cluster, "properties.cluster.id"),
        ("j2", with_foreign_server, "properties.mountVolumes.fileServers[0].fileServer.id"),
    ]:
        refused = client.put(job_url(name), headers=mine, json=job)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["target"] == field
        assert client.get(job_url(name)).status_code == 404
    # a cluster's mounts likewise
    cluster = {
        "properties": {
            "scaleSettings": {"manual": {"targetNodeCount": 1}},
            "nodeSetup": {"mountVolumes": {"fileServers": file_servers["fileServers"]}},
        }
    }
    refused = client.put(ws.rg("workspaces", "ws", "clusters", "c3"), headers=mine, json=cluster)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["target"] == (
        "properties.nodeSetup.mountVolumes.fileServers[0].fileServer.id"
    )
    # the same job by a token for every workspace: the foreign cluster is Batch AI's own usage
    assert client.put(job_url("j1"), json=on_foreign_cluster).status_code == 200

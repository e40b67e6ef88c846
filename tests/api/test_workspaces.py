"""Workspaces, experiments, file servers, operations and usages: routes, bodies, codes."""

from __future__ import annotations

from openbai.installation import App

from .conftest import TestClient
from .support import Arm, delete_and_wait


def test_workspace_lifecycle(client: TestClient, arm: Arm) -> None:
    url = arm.rg("workspaces", "ws")
    created = client.put(url, json={"location": "local", "tags": {"team": "vision"}})
    assert created.status_code == 200
    body = created.json()
    assert body["id"] == url.split("?")[0]
    assert body["type"] == "Microsoft.BatchAI/workspaces"
    assert (body["location"], body["tags"]) == ("local", {"team": "vision"})
    assert body["properties"]["provisioningState"] == "succeeded"

    patched = client.patch(url, json={"tags": {"team": "nlp"}})
    assert patched.status_code == 200 and patched.json()["tags"] == {"team": "nlp"}
    assert client.get(url).json()["tags"] == {"team": "nlp"}

    delete_and_wait(client, url)
    missing = client.get(url)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "WorkspaceNotFound"
    assert client.delete(url).status_code == 204  # gone already: as ARM answers


def test_workspace_lists_by_subscription_and_group(client: TestClient, arm: Arm) -> None:
    for rg, name in [("rg", "a"), ("rg", "b"), ("other", "c")]:
        url = arm.rg("workspaces", name).replace("/resourceGroups/rg/", f"/resourceGroups/{rg}/")
        assert client.put(url, json={"location": "local"}).status_code == 200
    everything = client.get(arm.sub("workspaces")).json()
    assert [w["name"] for w in everything["value"]] == ["c", "a", "b"]
    assert "nextLink" not in everything
    assert [w["name"] for w in client.get(arm.rg("workspaces")).json()["value"]] == ["a", "b"]


def test_workspace_body_is_validated(client: TestClient, arm: Arm) -> None:
    url = arm.rg("workspaces", "ws")
    bad = client.put(url, json={"location": 5})
    assert bad.status_code == 400
    assert bad.json()["error"]["target"] == "location"
    unknown_fields = client.put(url, json={"location": "local", "sku": {"name": "x"}})
    assert unknown_fields.status_code == 200
    assert client.put(url, json={"location": "elsewhere"}).status_code == 409
    assert client.patch(url, json={"tags": ["x"]}).json()["error"]["target"] == "tags"


def test_experiment_put_has_no_body(client: TestClient, arm: Arm) -> None:
    client.put(arm.rg("workspaces", "ws"), json={"location": "local"})
    url = arm.rg("workspaces", "ws", "experiments", "exp")
    created = client.put(url, headers={"Content-Type": ""})
    assert created.status_code == 200
    assert created.json()["type"] == "Microsoft.BatchAI/workspaces/experiments"
    assert client.put(url).status_code == 200  # idempotent, as ARM
    assert client.get(url).json()["name"] == "exp"
    listed = client.get(arm.rg("workspaces", "ws", "experiments")).json()
    assert [e["name"] for e in listed["value"]] == ["exp"]
    delete_and_wait(client, url)
    assert client.get(url).json()["error"]["code"] == "ExperimentNotFound"
    nowhere = client.put(arm.rg("workspaces", "nope", "experiments", "exp"))
    assert nowhere.status_code == 404


FILE_SERVER = {
    "properties": {
        "vmSize": "STANDARD_NC6",
        "sshConfiguration": {
            "userAccountSettings": {"adminUserName": "me", "adminUserPassword": "s3cret!"}
        },
        "dataDisks": {"diskSizeInGB": 10, "diskCount": 2, "storageAccountType": "Standard_LRS"},
    }
}


def test_file_server_lifecycle_never_shows_the_password(client: TestClient, arm: Arm) -> None:
    client.put(arm.rg("workspaces", "ws"), json={"location": "local"})
    url = arm.rg("workspaces", "ws", "fileServers", "nfs")
    created = client.put(url, json=FILE_SERVER)
    assert created.status_code == 200
    assert created.json()["properties"]["dataDisks"]["diskCount"] == 2
    assert "s3cret" not in created.text
    assert client.put(url, json=FILE_SERVER).status_code == 409
    assert "s3cret" not in client.get(url).text
    listed = client.get(arm.rg("workspaces", "ws", "fileServers")).json()["value"]
    assert [f["name"] for f in listed] == ["nfs"]
    bad = client.put(arm.rg("workspaces", "ws", "fileServers", "x"), json={"properties": {}})
    assert bad.status_code == 400 and bad.json()["error"]["target"] == "properties.vmSize"
    assert client.delete(url).status_code == 200  # nothing to wait for
    assert client.get(url).json()["error"]["code"] == "FileServerNotFound"


def test_operations_and_usages(client: TestClient, ws: Arm) -> None:
    ops = client.get("/providers/Microsoft.BatchAI/operations?api-version=2018-05-01").json()
    names = [o["name"] for o in ops["value"]]
    assert "Microsoft.BatchAI/jobs/terminate/action" in names
    assert all(o["display"]["provider"] == "Microsoft Batch AI" for o in ops["value"])
    usages = client.get(ws.sub("locations", "local", "usages")).json()["value"]
    assert {u["name"]["value"]: u["currentValue"] for u in usages} == {
        "Clusters": 1,
        "Cluster Nodes": 2,
    }
    assert all(u["unit"] == "Count" for u in usages)


def test_info_names_the_subscription(client: TestClient, service: App) -> None:
    info = client.get("/openbai/info").json()
    assert info["subscriptionId"] == service.settings.subscription_id
    assert info["apiVersion"] == "2018-05-01"

"""Clusters: create, PATCH scaleSettings, show, list, remote-login nodes, delete."""

from __future__ import annotations

from polling import wait_until

from .conftest import TestClient
from .support import Arm, delete_and_wait, job_body


def test_cluster_lifecycle(client: TestClient, ws: Arm) -> None:
    url = ws.rg("workspaces", "ws", "clusters", "c1")
    shown = client.get(url).json()
    assert shown["type"] == "Microsoft.BatchAI/workspaces/clusters"
    props = shown["properties"]
    assert props["scaleSettings"]["manual"]["targetNodeCount"] == 2
    assert props["provisioningState"] == "succeeded"
    # as on Batch AI, the nodes are allocated in the background: resizing, then steady
    props = wait_until(
        lambda: (p := client.get(url).json()["properties"])["allocationState"] == "steady" and p,
        "the cluster's 2 nodes allocated",
    )
    assert props["nodeStateCounts"]["idleNodeCount"] == 2

    resized = client.patch(
        url, json={"properties": {"scaleSettings": {"manual": {"targetNodeCount": 3}}}}
    )
    assert resized.status_code == 200
    assert resized.json()["properties"]["allocationState"] == "resizing"
    wait_until(
        lambda: client.get(url).json()["properties"]["currentNodeCount"] == 3,
        "the cluster resized to 3 nodes",
    )

    nodes = client.post(url.replace("?", "/listRemoteLoginInformation?")).json()["value"]
    assert [n["nodeId"] for n in nodes] == ["c1-0", "c1-1", "c1-2"]
    assert all(n["ipAddress"] == "127.0.0.1" and n["port"] == 22 for n in nodes)
    paged = client.post(url.replace("?", "/listRemoteLoginInformation?") + "&maxresults=2").json()
    assert len(paged["value"]) == 2
    assert [n["nodeId"] for n in client.get(paged["nextLink"]).json()["value"]] == ["c1-2"]

    assert client.put(url, json={"properties": {}}).status_code == 409
    listed = client.get(ws.rg("workspaces", "ws", "clusters")).json()["value"]
    assert [c["name"] for c in listed] == ["c1"]
    delete_and_wait(client, url)
    assert client.get(url).json()["error"]["code"] == "ClusterNotFound"


def test_cluster_secrets_are_never_returned(client: TestClient, ws: Arm) -> None:
    url = ws.rg("workspaces", "ws", "clusters", "c2")
    task = {
        "commandLine": "true",
        "stdOutErrPathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/x",
        "secrets": [{"name": "TOKEN", "value": "very-secret"}],
    }
    body = {
        "properties": {
            "userAccountSettings": {"adminUserName": "me", "adminUserPassword": "hunter2!"},
            "nodeSetup": {
                "setupTask": task,
                "mountVolumes": {
                    "unmanagedFileSystems": [
                        {"mountCommand": "mount -t tmpfs tmpfs", "relativeMountPath": "x"}
                    ]
                },
            },
        }
    }
    # the setup task's output on no volume of the cluster: refused, naming the field
    elsewhere = {"properties": {"nodeSetup": {"setupTask": task}}}
    refused = client.put(url, json=elsewhere)
    assert refused.status_code == 400
    assert refused.json()["error"]["target"] == "properties.nodeSetup.setupTask.stdOutErrPathPrefix"
    created = client.put(url, json=body)
    assert created.status_code == 200
    for response in (created, client.get(url), client.get(ws.rg("workspaces", "ws", "clusters"))):
        assert "hunter2" not in response.text and "very-secret" not in response.text
    assert created.json()["properties"]["nodeSetup"]["setupTask"]["secrets"] == [{"name": "TOKEN"}]


def test_a_setup_task_listing_names_the_directory_it_refuses(
    client: TestClient, ws: Arm, logs_share: str
) -> None:
    url = ws.rg("workspaces", "ws", "clusters", "prepared")
    share = {"azureFileUrl": "https://acct.file.core.windows.net/logs", "relativeMountPath": "logs"}
    task = {"commandLine": "true", "stdOutErrPathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/logs"}
    setup = {"setupTask": task, "mountVolumes": {"azureFileShares": [share]}}
    assert client.put(url, json={"properties": {"nodeSetup": setup}}).status_code == 200
    listing = ws.rg("workspaces", "ws", "clusters", "prepared", "listOutputFiles")
    listed = client.post(listing + "&directory=../..")
    assert listed.status_code == 400
    assert listed.json()["error"]["target"] == "directory"


def test_a_cluster_with_an_app_insights_key_is_created_and_runs_jobs(
    client: TestClient, ws: Arm, logs_share: str
) -> None:
    """Batch AI's performance counters: the instrumentation key is a secret, kept out of the
    stored spec; the spec read back without it is the cluster's still (it was refused)."""
    url = ws.rg("workspaces", "ws", "clusters", "perf")
    component = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Insights/components/c"
    insights = {"component": {"id": component}, "instrumentationKey": "ikey-secret"}
    body = {
        "properties": {
            "scaleSettings": {"manual": {"targetNodeCount": 1}},
            "nodeSetup": {"performanceCountersSettings": {"appInsightsReference": insights}},
        }
    }
    created = client.put(url, json=body)
    assert created.status_code == 200, created.text
    shown = client.get(url)
    assert shown.status_code == 200 and "ikey-secret" not in shown.text
    reference = shown.json()["properties"]["nodeSetup"]["performanceCountersSettings"]
    assert reference["appInsightsReference"]["component"]["id"] == component
    job = ws.rg("workspaces", "ws", "experiments", "exp", "jobs", "onperf")
    answered = client.put(job, json=job_body("echo ran", cluster={"id": "perf"}))
    assert answered.status_code == 200, answered.text


def test_auto_storage_extension(client: TestClient, ws: Arm) -> None:
    url = ws.rg("workspaces", "ws", "clusters", "auto", query="openbai-use-auto-storage=true")
    created = client.put(url, json={"properties": {}})
    assert created.status_code == 200
    mounts = created.json()["properties"]["nodeSetup"]["mountVolumes"]
    assert mounts["azureFileShares"][0]["relativeMountPath"] == "autoafs"
    assert mounts["azureBlobFileSystems"][0]["relativeMountPath"] == "autobfs"


def test_cluster_with_queued_jobs_cannot_be_deleted(
    client: TestClient, ws: Arm, logs_share: str
) -> None:
    client.patch(
        ws.rg("workspaces", "ws", "clusters", "c1"),
        json={"properties": {"scaleSettings": {"manual": {"targetNodeCount": 1}}}},
    )
    job = ws.rg("workspaces", "ws", "experiments", "exp", "jobs", "long")
    assert client.put(job, json=job_body("sleep 30")).status_code == 200
    response = client.delete(ws.rg("workspaces", "ws", "clusters", "c1"))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "ClusterInUse"
    delete_and_wait(client, job)

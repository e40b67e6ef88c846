"""Jobs: create (200 + body), show, list with paging, terminate (202 + AsyncOperation),
delete, remote-login nodes, and what is refused."""

from __future__ import annotations

import time

from openbai.installation import App

from .conftest import TestClient
from .support import Arm, delete_and_wait, job_body, wait_for_job


def jobs_url(arm: Arm, *segments: str, query: str = "") -> str:
    return arm.rg("workspaces", "ws", "experiments", "exp", "jobs", *segments, query=query)


def test_create_show_and_run(client: TestClient, ws: Arm, logs_share: str) -> None:
    body = job_body(
        "echo hello; echo $GREETING",
        environmentVariables=[{"name": "GREETING", "value": "hi"}],
        secrets=[{"name": "PASSWORD", "value": "do-not-show"}],
        constraints={"maxWallClockTime": "P1D"},
    )
    created = client.put(jobs_url(ws, "j1"), json=body)
    assert created.status_code == 200
    job = created.json()
    assert job["type"] == "Microsoft.BatchAI/workspaces/experiments/jobs"
    props = job["properties"]
    assert props["provisioningState"] == "succeeded"
    assert props["executionState"] == "queued"
    assert props["cluster"]["id"].endswith("/workspaces/ws/clusters/c1")
    assert props["toolType"] == "custom"
    assert props["constraints"]["maxWallClockTime"] == "P1D"
    assert props["jobOutputDirectoryPathSegment"].startswith(f"{ws.subscription}/rg/workspaces/ws")
    assert "do-not-show" not in created.text

    done = wait_for_job(client, jobs_url(ws, "j1"))
    assert done["properties"]["executionState"] == "succeeded"
    assert done["properties"]["executionInfo"]["exitCode"] == 0
    assert "do-not-show" not in client.get(jobs_url(ws, "j1")).text


def test_create_refuses_bad_input_naming_the_field(
    client: TestClient, ws: Arm, logs_share: str
) -> None:
    cases = [
        ({"properties": {"nodeCount": "one"}}, "properties.nodeCount"),
        (job_body("x", nodeCount=0), "properties.nodeCount"),  # 5 would wait for nodes
        (job_body("x", cluster={"id": "nope"}), "properties.cluster.id"),
        (job_body("x", schedulingPriority="urgent"), "properties.schedulingPriority"),
        (job_body("x", stdOutErrPathPrefix=7), "properties.stdOutErrPathPrefix"),
    ]
    for body, target in cases:
        response = client.put(jobs_url(ws, "bad"), json=body)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["target"] == target
    assert client.get(jobs_url(ws, "bad")).status_code == 404


def test_duplicate_job_is_a_conflict(client: TestClient, ws: Arm, logs_share: str) -> None:
    assert client.put(jobs_url(ws, "j"), json=job_body("true")).status_code == 200
    again = client.put(jobs_url(ws, "j"), json=job_body("true"))
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "JobAlreadyExists"


def test_list_pages_follow_next_link(
    client: TestClient, ws: Arm, logs_share: str, service: App
) -> None:
    from openbai.services import jobs

    service.on_change = lambda: None  # nothing needs to run here
    for i in range(5):
        jobs.create_job(service, "rg", "ws", "exp", f"j{i}", job_body("true"))
    first = client.get(jobs_url(ws, query="maxresults=2")).json()
    names = [j["name"] for j in first["value"]]
    link = first["nextLink"]
    assert "api-version=2018-05-01" in link and "maxresults=2" in link
    while link:
        page = client.get(link).json()
        names += [j["name"] for j in page["value"]]
        link = page.get("nextLink")
    assert names == [f"j{i}" for i in range(5)]
    assert len(client.get(jobs_url(ws)).json()["value"]) == 5


def test_a_list_holds_its_own_experiments_jobs_and_names_what_is_missing(
    client: TestClient, ws: Arm, logs_share: str, service: App
) -> None:
    from openbai.services import jobs

    service.on_change = lambda: None  # nothing needs to run here
    for i in range(3):
        jobs.create_job(service, "rg", "ws", "exp", f"j{i}", job_body("true"))
    # a workspace and an experiment of the same names elsewhere hold none of them
    assert client.put(ws.rg("workspaces", "ws2"), json={"location": "local"}).status_code == 200
    for workspace, experiment in (("ws", "other"), ("ws2", "exp")):
        url = ws.rg("workspaces", workspace, "experiments", experiment)
        assert client.put(url).status_code == 200
        listed = client.get(ws.rg("workspaces", workspace, "experiments", experiment, "jobs"))
        assert listed.status_code == 200 and listed.json() == {"value": []}

    past_the_end = client.get(jobs_url(ws, query="maxresults=2&$skiptoken=3")).json()
    assert past_the_end == {"value": []}
    first_page = client.get(jobs_url(ws, query="maxresults=2")).json()
    assert [j["name"] for j in first_page["value"]] == ["j0", "j1"]
    assert first_page["value"][1] == client.get(jobs_url(ws, "j1")).json()

    for (workspace, experiment), code in (
        (("ws", "nope"), "ExperimentNotFound"),
        (("nope", "exp"), "WorkspaceNotFound"),
    ):
        missing = client.get(ws.rg("workspaces", workspace, "experiments", experiment, "jobs"))
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == code
        assert missing.json()["error"]["target"] == "nope"


def test_terminate_is_long_running(client: TestClient, ws: Arm, logs_share: str) -> None:
    assert client.put(jobs_url(ws, "sleeper"), json=job_body("sleep 60")).status_code == 200
    deadline = time.monotonic() + 30
    while client.get(jobs_url(ws, "sleeper")).json()["properties"]["executionState"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    nodes = client.post(jobs_url(ws, "sleeper", "listRemoteLoginInformation")).json()["value"]
    assert len(nodes) == 1 and nodes[0]["nodeId"].startswith("c1-")

    response = client.post(jobs_url(ws, "sleeper", "terminate"))
    assert response.status_code == 202
    assert response.headers["Retry-After"] == "1"
    operation = response.headers["Azure-AsyncOperation"]
    assert "/operationresults/" in operation and "api-version=2018-05-01" in operation
    deadline = time.monotonic() + 60
    while (status := client.get(operation).json()["status"]) == "InProgress":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert status == "Succeeded"
    job = client.get(jobs_url(ws, "sleeper")).json()
    assert job["properties"]["executionState"] == "failed"
    assert client.post(jobs_url(ws, "sleeper", "listRemoteLoginInformation")).json()["value"] == []


def test_operation_ids_are_checked(client: TestClient, ws: Arm) -> None:
    response = client.get(ws.sub("locations", "local", "operationresults", "garbage"))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "OperationNotFound"


def test_delete_job(client: TestClient, ws: Arm, logs_share: str) -> None:
    client.put(jobs_url(ws, "j"), json=job_body("true"))
    delete_and_wait(client, jobs_url(ws, "j"))
    assert client.get(jobs_url(ws, "j")).json()["error"]["code"] == "JobNotFound"
    assert client.delete(jobs_url(ws, "j")).status_code == 204  # gone already: as ARM answers
    assert client.post(jobs_url(ws, "j", "terminate")).status_code == 404


def test_deleting_each_job_while_paging_through_them_misses_none(
    client: TestClient, ws: Arm, logs_share: str, service: App
) -> None:
    """What a script does with the SDK's pager (it fetches ``nextLink`` as the caller
    iterates): delete each job it sees. A page goes on after the last job sent, so the
    deletes do not shift the jobs after it past the next page."""
    from openbai.services import jobs

    service.on_change = lambda: None  # nothing needs to run here
    names = [f"j{i}" for i in range(7)]
    for name in names:
        jobs.create_job(service, "rg", "ws", "exp", name, job_body("true"))
    seen: list[str] = []
    url: str | None = jobs_url(ws, query="maxresults=2")
    while url is not None:
        page = client.get(url).json()
        for job in page["value"]:
            seen.append(job["name"])
            delete_and_wait(client, jobs_url(ws, job["name"]))
        url = page.get("nextLink")
    assert seen == names
    assert client.get(jobs_url(ws)).json() == {"value": []}

    for bad in ("k", "kx", "-1", "k-1", "1.5"):
        assert client.get(jobs_url(ws, query=f"$skiptoken={bad}")).status_code == 400, bad

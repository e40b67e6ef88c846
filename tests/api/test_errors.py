"""ARM error bodies and statuses: api-version, subscriptions, names, bodies, routes."""

from __future__ import annotations

import pytest

from .conftest import TestClient
from .support import Arm


def test_api_version_is_required_and_checked(client: TestClient, arm: Arm) -> None:
    url = arm.rg("workspaces").split("?")[0]
    missing = client.get(url)
    assert missing.status_code == 400
    assert missing.json()["error"] == {
        "code": "MissingApiVersionParameter",
        "message": "api-version: is required",
        "target": "api-version",
    }
    wrong = client.get(url + "?api-version=2017-09-01-preview")
    assert wrong.status_code == 400
    assert wrong.json()["error"]["code"] == "InvalidApiVersionParameter"


def test_another_subscription_is_not_found(client: TestClient, arm: Arm) -> None:
    url = arm.rg("workspaces").replace(arm.subscription, "00000000-0000-0000-0000-000000000000")
    response = client.get(url)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "SubscriptionNotFound"
    same_in_capitals = client.get(
        arm.rg("workspaces").replace(arm.subscription, arm.subscription.upper())
    )
    assert same_in_capitals.status_code == 200


@pytest.mark.parametrize(
    ("segments", "target"),
    [
        (("workspaces", "bad.name"), "workspaceName"),
        (("workspaces", "x" * 65), "workspaceName"),
        (("workspaces", "ws", "experiments", "a b"), "experimentName"),
        (("workspaces", "ws", "clusters", "c%21"), "clusterName"),
    ],
)
def test_names_are_validated(
    client: TestClient, arm: Arm, segments: tuple[str, ...], target: str
) -> None:
    response = client.get(arm.rg(*segments))
    assert response.status_code == 400
    assert response.json()["error"]["target"] == target


def test_bad_resource_group_name(client: TestClient, arm: Arm) -> None:
    url = arm.rg("workspaces").replace("/resourceGroups/rg/", "/resourceGroups/r%20g/")
    assert client.get(url).json()["error"]["target"] == "resourceGroupName"


@pytest.mark.parametrize("query", ["maxresults=0", "maxresults=1001", "maxresults=x"])
def test_maxresults_range(client: TestClient, arm: Arm, query: str) -> None:
    response = client.get(arm.rg("workspaces", query=query))
    assert response.status_code == 400
    assert response.json()["error"]["target"] == "maxresults"


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_bodies_that_are_not_json_objects(client: TestClient, arm: Arm, body: bytes) -> None:
    response = client.put(arm.rg("workspaces", "ws"), content=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidRequestContent"


def test_unknown_route_and_method(client: TestClient, arm: Arm) -> None:
    assert client.get("/nothing/here").json()["error"]["code"] == "NotFound"
    response = client.post(arm.rg("workspaces", "ws"))
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "MethodNotAllowed"


def test_wrong_types_name_the_field(client: TestClient, ws: Arm) -> None:
    url = ws.rg("workspaces", "ws", "clusters", "c1")
    response = client.patch(
        url, json={"properties": {"scaleSettings": {"manual": {"targetNodeCount": "3"}}}}
    )
    assert response.status_code == 400
    assert response.json()["error"]["target"] == "properties.scaleSettings.manual.targetNodeCount"

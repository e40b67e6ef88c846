"""Bad input that used to reach a 500 (or memory) is a 4xx naming the field, and a DELETE of
something that is not there answers as ARM does."""

from __future__ import annotations

import json

import httpx
from conftest import Bai

from .conftest import TestClient
from .support import Arm


def error(response: httpx.Response) -> dict[str, str]:
    body: dict[str, dict[str, str]] = response.json()
    return body["error"]


def test_a_body_over_4_mib_is_413_and_stores_nothing(client: TestClient, ws: Arm) -> None:
    url = ws.rg("workspaces", "ws", "experiments", "exp", "jobs", "big")
    big = {"properties": {"padding": "x" * (4 * 1024 * 1024)}}
    response = client.put(
        url, content=json.dumps(big), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert error(response)["code"] == "RequestEntityTooLarge"
    assert error(response)["target"] == "body"
    assert client.get(url).status_code == 404


def test_a_body_nested_a_thousand_deep_is_400_at_the_body(client: TestClient, ws: Arm) -> None:
    deep = '{"location": "local", "tags": ' + "[" * 1000 + "]" * 1000 + "}"
    response = client.put(
        ws.rg("workspaces", "deep"), content=deep, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert error(response)["target"] == "body"
    assert "deeper than 64" in error(response)["message"]


def test_a_skiptoken_past_any_list_is_400(client: TestClient, ws: Arm) -> None:
    response = client.get(ws.rg("workspaces", query=f"$skiptoken={2**63 + 5}"))
    assert response.status_code == 400


def test_resource_groups_follow_arms_rule(client: TestClient, arm: Arm, bai: Bai) -> None:
    url = Arm(arm.subscription, "ends.").rg("workspaces", "ws")
    response = client.put(url, json={"location": "local"})
    assert response.status_code == 400
    for group in (".", ".."):  # an HTTP client folds these away: the CLI passes them on
        refused = bai("workspace", "create", "-g", group, "-n", "ws", expect=2)
        assert "resourceGroupName" in refused.stderr or "resource" in refused.stderr


def test_deleting_what_is_not_there_is_204_but_a_missing_parent_is_404(
    client: TestClient, ws: Arm
) -> None:
    assert client.delete(ws.rg("workspaces", "nope")).status_code == 204
    assert client.delete(ws.rg("workspaces", "ws", "experiments", "nope")).status_code == 204
    assert client.delete(ws.rg("workspaces", "ws", "clusters", "nope")).status_code == 204
    job = ws.rg("workspaces", "ws", "experiments", "exp", "jobs", "nope")
    assert client.delete(job).status_code == 204
    assert client.delete(ws.rg("workspaces", "ws", "fileServers", "nope")).status_code == 204
    orphan = ws.rg("workspaces", "nope", "experiments", "exp", "jobs", "j")
    assert client.delete(orphan).status_code == 404


def test_the_openapi_document_lists_the_codes_a_delete_answers_with(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    ops = [op for path in document["paths"].values() for op in path.values()]
    delete = next(op for op in ops if op.get("operationId") == "Jobs_Delete")
    assert {"202", "204", "400", "401", "404", "409"} <= delete["responses"].keys()
    assert all("422" not in op["responses"] for op in ops)


def test_the_cli_refuses_a_job_file_past_4_mib_without_reading_it_all(bai: Bai) -> None:
    refused = bai(
        "job", "create", "-w", "ws", "-e", "exp", "-c", "c", "-n", "j", "-f", "/dev/zero", expect=2
    )
    assert "/dev/zero is larger than 4 MiB" in refused.stderr


def test_an_upload_with_a_modification_time_out_of_range_is_400_naming_it(
    client: TestClient, logs_share: str
) -> None:
    url = f"/openbai/storage/accounts/{logs_share}/file/logs/content?path=f.txt"
    for value in ("9" * 30, "-1"):
        refused = client.put(url, content=b"data", headers={"x-openbai-mtime-ns": value})
        assert refused.status_code == 400, refused.text
        assert "x-openbai-mtime-ns" in refused.json()["error"]["target"]
    stored = client.put(url, content=b"data", headers={"x-openbai-mtime-ns": str(10**18)})
    assert stored.status_code == 200, stored.text


def test_an_account_whose_options_no_backend_could_use_is_400_naming_the_option(
    client: TestClient,
) -> None:
    for options, field in (
        ({"account_key": "a", "max_concurrency": "x"}, "options.max_concurrency"),
        ({"account_key": "a", "retry_total": -1}, "options.retry_total"),
        ({"account_key": "a", "timeout": "soon"}, "options.timeout"),
    ):
        refused = client.put(
            "/openbai/storage/accounts/azz", json={"kind": "azure", "options": options}
        )
        assert refused.status_code == 400, refused.text
        assert error(refused)["target"] == field
        assert client.get("/openbai/storage/accounts/azz").status_code == 404  # nothing stored
    for kind, options, field in (
        ("azure", {}, "connection_string"),
        ("azure", {"account_key": "not base64!"}, "options.account_key"),
        ("azure", {"connection_string": "garbage"}, "options.connection_string"),
        ("azure", {"account_key": "a2V5", "blob_endpoint": "http://h:99999/x"}, "options.blob_endpoint"),
        ("azure", {"account_key": "a2V5", "blob_endpoint": "127.0.0.1:9"}, "options.blob_endpoint"),
        ("local", {"connection_string": "AccountName=a;AccountKey=a2V5"}, "options.connection_string"),
    ):  # fmt: skip
        refused = client.put(
            "/openbai/storage/accounts/azz", json={"kind": kind, "options": options}
        )
        assert refused.status_code == 400, refused.text
        assert error(refused)["target"] == field
        assert client.get("/openbai/storage/accounts/azz").status_code == 404
    # a SAS given as the endpoint's query: refused, and never shown back
    with_sas = {
        "account_key": "a2V5",
        "blob_endpoint": "https://a.blob.core.windows.net/?sv=1&sig=S3CR3T",
    }
    refused = client.put(
        "/openbai/storage/accounts/azz", json={"kind": "azure", "options": with_sas}
    )
    assert refused.status_code == 400 and "S3CR3T" not in refused.text
    assert error(refused)["target"] == "options.blob_endpoint"
    fine = {"account_key": "a2V5", "max_concurrency": "4", "timeout": 2.5}
    assert (
        client.put(
            "/openbai/storage/accounts/azz", json={"kind": "azure", "options": fine}
        ).status_code
        == 200
    )


def test_a_file_name_longer_than_a_file_system_keeps_is_400(
    client: TestClient, logs_share: str
) -> None:
    url = f"/openbai/storage/accounts/{logs_share}/file/logs/content?path={'n' * 300}.txt"
    refused = client.put(url, content=b"data")
    assert refused.status_code == 400, refused.text
    assert "too long" in error(refused)["message"]

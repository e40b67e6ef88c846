"""Bearer tokens: every route but /healthz and signed links needs one; a wrong or missing
token gets 401 with an ARM error body, and never data."""

from __future__ import annotations

import pytest
from conftest import Bai

from openbai.installation import App
from openbai.services import tokens

from .conftest import TestClient
from .support import Arm


def test_healthz_needs_no_token(anonymous: TestClient) -> None:
    response = anonymous.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
    ],
)
def test_missing_or_wrong_token_is_401_without_data(
    anonymous: TestClient, ws: Arm, headers: dict[str, str]
) -> None:
    for url in [
        ws.rg("workspaces", "ws"),
        ws.rg("workspaces"),
        "/openapi.json",
        "/openbai/info",
        "/openbai/storage/accounts",
        "/providers/Microsoft.BatchAI/operations?api-version=2018-05-01",
    ]:
        response = anonymous.get(url, headers=headers)
        assert response.status_code == 401, url
        assert response.headers["WWW-Authenticate"] == "Bearer"
        error = response.json()["error"]
        assert error["code"] in ("AuthenticationFailed", "InvalidAuthenticationToken")
        assert "ws" not in response.text


def test_auth_is_checked_before_the_request_is(anonymous: TestClient, arm: Arm) -> None:
    # a bad body, a bad name and no api-version: still 401, nothing is looked at
    response = anonymous.put(arm.rg("workspaces", "bad.name").split("?")[0], content=b"{oops")
    assert response.status_code == 401


def test_deleted_token_is_refused_at_once(client: TestClient, service: App, ws: Arm) -> None:
    info, other = tokens.create_token(service, "other")
    url = ws.rg("workspaces", "ws")
    assert client.get(url, headers={"Authorization": f"Bearer {other}"}).status_code == 200
    tokens.delete_token(service, "other")
    assert client.get(url, headers={"Authorization": f"Bearer {other}"}).status_code == 401


def test_tokens_are_stored_hashed(service: App) -> None:
    _, token = tokens.create_token(service, "hashed")
    from openbai.store.models import ApiToken

    with service.db.reading() as s:
        stored = [row.token_hash for row in s.query(ApiToken)]
    assert token not in stored and all(len(h) == 64 for h in stored)
    assert tokens.verify_token(service, token).name == "hashed"


def test_token_cli(bai: Bai) -> None:
    token = bai("token", "create", "-n", "ci").stdout.strip()
    assert token.startswith("bai_") and len(token) > 40
    assert [t["name"] for t in bai.json("token", "list")] == ["ci"]
    assert token not in bai("token", "list", "-o", "json").stdout
    assert "already exists" in bai("token", "create", "-n", "ci", expect=4).stderr
    bai("token", "delete", "-n", "ci")
    assert bai.json("token", "list") == []
    bai("token", "delete", "-n", "ci", expect=3)

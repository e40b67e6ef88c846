"""Fixtures for the REST API: an in-process app (FastAPI's TestClient) and a real
``bai serve`` started as a subprocess on a free port of 127.0.0.1."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from openbai.installation import App
from openbai.server import create_app
from openbai.services import tokens
from openbai.settings import Settings

from .support import Arm, Server, start_server

with warnings.catch_warnings():  # starlette asks for httpx2; openbai pins httpx
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient as TestClient


@pytest.fixture
def service(bai: Any) -> Iterator[App]:
    app = App.open(Settings.load(bai.env))
    yield app
    app.close()


@pytest.fixture
def token(service: App) -> str:
    return tokens.create_token(service, "tests")[1]


@pytest.fixture
def client(service: App, token: str) -> Iterator[TestClient]:
    api = create_app(service.settings, service=service)
    with TestClient(api, headers={"Authorization": f"Bearer {token}"}) as test_client:
        yield test_client


@pytest.fixture
def anonymous(client: TestClient) -> TestClient:
    """The same app, without a token."""
    return TestClient(client.app)


@pytest.fixture
def arm(service: App) -> Arm:
    return Arm(service.settings.subscription_id)


@pytest.fixture
def ws(client: TestClient, arm: Arm) -> Arm:
    """Workspace ``ws`` with experiment ``exp`` and a 2-node local cluster ``c1``."""
    assert client.put(arm.rg("workspaces", "ws"), json={"location": "local"}).status_code == 200
    assert client.put(arm.rg("workspaces", "ws", "experiments", "exp")).status_code == 200
    body = {"properties": {"scaleSettings": {"manual": {"targetNodeCount": 2}}}}
    assert client.put(arm.rg("workspaces", "ws", "clusters", "c1"), json=body).status_code == 200
    return arm


@pytest.fixture
def logs_share(service: App) -> str:
    """Embedded account ``acct`` with file share ``logs`` (where job_body's output goes)."""
    from openbai.services import accounts
    from openbai.storage.base import VolumeKind

    accounts.create_account(service, "acct")
    accounts.create_volume(service, "acct", VolumeKind.FILE, "logs")
    return "acct"


@pytest.fixture
def server(bai: Any) -> Iterator[Server]:
    """``bai serve`` over the ``bai`` fixture's installation."""
    running = start_server(bai.home, bai.env)
    yield running
    running.stop()

"""Fixtures for the web explorer: the server's app in-process (TestClient, logged in through
the form), an installation with a workspace, experiment, cluster and a share for job output,
and jobs made through the services (they run for real, through the background dispatcher)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from job_files import logged_job
from starlette.exceptions import StarletteDeprecationWarning

from openbai.errors import NotFoundError
from openbai.installation import App
from openbai.server import create_app
from openbai.services import accounts, clusters, jobs, tokens, workspaces
from openbai.settings import Settings
from openbai.storage.base import VolumeKind

with warnings.catch_warnings():  # starlette asks for httpx2; openbai pins httpx
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient as TestClient

JOB_URL = "/ui/workspaces/rg/ws/experiments/exp/jobs"
FINAL = ("succeeded", "failed")


@pytest.fixture
def service(bai: Any) -> Iterator[App]:
    app = App.open(Settings.load(bai.env))
    yield app
    app.close()


@pytest.fixture
def token(service: App) -> str:
    return tokens.create_token(service, "browser")[1]


@pytest.fixture
def anonymous(service: App) -> Iterator[TestClient]:
    """The server's app, with no session."""
    with TestClient(create_app(service.settings, service=service)) as client:
        yield client


@pytest.fixture
def web(anonymous: TestClient, token: str) -> TestClient:
    """The same app after logging in with the form (the cookie is kept by the client)."""
    response = anonymous.post("/ui/login", data={"token": token}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return anonymous


def install(app: App) -> None:
    """Workspace ``rg/ws``, experiment ``exp``, 2-node cluster ``c1``, share ``acct/logs``."""
    workspaces.create_workspace(app, "rg", "ws")
    workspaces.create_experiment(app, "rg", "ws", "exp")
    body = {"properties": {"scaleSettings": {"manual": {"targetNodeCount": 2}}}}
    clusters.create_cluster(app, "rg", "ws", "c1", body)
    accounts.create_account(app, "acct")
    accounts.create_volume(app, "acct", VolumeKind.FILE, "logs")


@pytest.fixture
def installation(service: App) -> App:
    install(service)
    return service


def job_body(command: str, **properties: Any) -> dict[str, Any]:
    """A job on ``c1`` whose stdouterr (and ``MODEL`` output) go to share ``acct/logs``."""
    model = [{"id": "MODEL", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs"}]
    props = {"cluster": {"id": "c1"}, "outputDirectories": model, **properties}
    return {"properties": logged_job(command, **props)}


def wait_for(app: App, name: str, states: tuple[str, ...] = FINAL, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        state = jobs.get_job(app, "rg", "ws", "exp", name).execution_state
        if state in states:
            return state
        assert time.monotonic() < deadline, f"job {name} still {state}"
        time.sleep(0.1)


@pytest.fixture
def run_job(installation: App) -> Iterator[Callable[..., str]]:
    """``run_job(name, command, wait=True)``: create a job, by default wait until it ended.
    Jobs still running at the end of the test are stopped."""
    created: list[str] = []

    def run(name: str, command: str, *, wait: bool = True, **properties: Any) -> str:
        jobs.create_job(installation, "rg", "ws", "exp", name, job_body(command, **properties))
        created.append(name)
        return wait_for(installation, name) if wait else "queued"

    yield run
    stop_jobs(installation, created)


def stop_jobs(app: App, names: list[str]) -> None:
    ids = []
    with app.db.reading() as s:
        for name in names:
            try:
                ids.append(jobs.job_row(s, "rg", "ws", "exp", name).id)
            except NotFoundError:
                pass  # the test deleted it
    jobs.stop_jobs(app, ids)

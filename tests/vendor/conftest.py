"""The vendor's own tests (azure-mgmt-batchai's and azure-cli's batchai suites), their flows
rewritten against a real ``bai serve``: an installation with an embedded account ``psdk``
whose share ``share`` every cluster mounts at ``azfiles``, as the vendor's helpers set up."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from api.support import Server, start_server
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.core.pipeline.transport import HttpRequest, HttpResponse
from azure.mgmt.batchai import BatchAI
from conftest import Bai

RG = "default"
WS = "workspace"
EXP = "experiment"
ACCOUNT = "psdk"
SHARE = "share"
MOUNT = "azfiles"
OUTPUT_ID = "OUTPUTS"


@pytest.fixture
def bai_env(bai_env: dict[str, str]) -> dict[str, str]:
    # the vendor's auto-scale test waits for the cluster to shrink; Batch AI took minutes
    return {**bai_env, "OPENBAI_AUTOSCALE_IDLE_SECONDS": "1"}


class _Bearer(SansIOHTTPPolicy[HttpRequest, HttpResponse]):
    def __init__(self, token: str) -> None:
        self._token = token

    def on_request(self, request: PipelineRequest[HttpRequest]) -> None:
        request.http_request.headers["Authorization"] = "Bearer " + self._token


@pytest.fixture
def server(bai: Bai) -> Iterator[Server]:
    bai("storage", "account", "create", "-n", ACCOUNT)
    bai("storage", "share", "create", "--account", ACCOUNT, "-n", SHARE)
    running = start_server(bai.home, bai.env)
    yield running
    running.stop()


@pytest.fixture
def client(server: Server) -> Any:
    # Any: the SDK annotates its list operations as yielding pages, not the items they yield
    return BatchAI(
        credential=object(),  # type: ignore[arg-type]
        subscription_id=server.subscription,
        base_url=server.url,
        authentication_policy=_Bearer(server.token),
        polling_interval=1,
    )


def poll(
    what: str, get: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 90
) -> Any:
    """What the vendor's wait_for_* helpers do: poll until ``done``, with a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = get()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout:g} s (last seen: {value!r})")
        time.sleep(0.2)

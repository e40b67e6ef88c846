"""/openapi.json is served, and requests generated from it (schemathesis, a bounded number
per operation) never get a 5xx from a real server, nor a status code, content type or body
the document does not list."""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok
from schemathesis.schemas import APIOperation

from .support import Server

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
#: examples per operation: enough to walk every route, few enough to stay fast
EXAMPLES = int(os.environ.get("OPENBAI_SCHEMATHESIS_EXAMPLES", "8"))


def test_openapi_document(server: Server) -> None:
    with server.client() as http:
        document = http.get("/openapi.json").json()
    assert httpx.get(f"{server.url}/openapi.json").status_code == 401
    operation_ids = {
        op["operationId"] for path in document["paths"].values() for op in path.values()
    }
    swagger = {
        "Operations_List", "Usages_List", "Workspaces_List", "Workspaces_ListByResourceGroup",
        "Workspaces_Create", "Workspaces_Update", "Workspaces_Delete", "Workspaces_Get",
        "Experiments_ListByWorkspace", "Experiments_Create", "Experiments_Delete",
        "Experiments_Get", "Jobs_ListByExperiment", "Jobs_Create", "Jobs_Delete", "Jobs_Get",
        "Jobs_ListOutputFiles", "Jobs_ListRemoteLoginInformation", "Jobs_Terminate",
        "FileServers_Create", "FileServers_Delete", "FileServers_Get",
        "FileServers_ListByWorkspace", "Clusters_Create", "Clusters_Update", "Clusters_Delete",
        "Clusters_Get", "Clusters_ListRemoteLoginInformation", "Clusters_ListByWorkspace",
    }  # fmt: skip
    assert swagger <= operation_ids
    assert "JobCreateParameters" in document["components"]["schemas"]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_requests_get_no_server_error(server: Server, mode: GenerationMode) -> None:
    auth = {"Authorization": f"Bearer {server.token}"}
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json", headers=auth)
    with server.client() as http:  # something to find: ws/exp/cluster in group "rg"
        base = f"/subscriptions/{server.subscription}/resourceGroups/rg/providers/Microsoft.BatchAI"
        http.put(f"{base}/workspaces/ws?api-version=2018-05-01", json={"location": "local"})
        http.put(f"{base}/workspaces/ws/experiments/exp?api-version=2018-05-01")
    failures: list[str] = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()  # the server's own schema must load
        operation = result.ok()

        @given(case=operation.as_strategy(mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,  # the same requests every run: a failure is found again, not by luck
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def call(case: schemathesis.Case[APIOperation[Any, Any, Any, Any]]) -> None:
            if case.path_parameters and "subscriptionId" in case.path_parameters:
                case.path_parameters["subscriptionId"] = server.subscription
            response = case.call(base_url=server.url, headers=auth, timeout=30)
            try:  # no 5xx, only documented codes and content types, bodies as documented
                case.validate_response(response, checks=CHECKS)
            except (AssertionError, ExceptionGroup) as exc:  # a Failure, or a group of them
                failures.append(
                    f"{case.method} {case.formatted_path}: {response.status_code}"
                    f" {response.text[:200]}: {str(exc)[:300]}"
                )

        try:
            call()
        except Unsatisfiable:  # nothing negative to make of it (no parameters, no body)
            pass
    assert not failures, "\n".join(failures[:20])
    assert server.process.poll() is None

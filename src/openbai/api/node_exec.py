"""openbai: a command on a node of a cluster or of a running job, through the server.

Batch AI's nodes had SSH; openbai's have none, so ``bai cluster node exec`` and ``bai job
node exec --exec CMD`` with ``--server`` come here: the server runs the command as the CLI
does where the installation is (services/nodes.py: in the node's sandbox; ``srun`` on
Slurm, ``--overlap`` in a job's allocation), with no terminal and a time limit, and answers
its exit code and output (the first MiB of each stream; ``stdoutTruncated`` says when more
was dropped). Body: ``{"command": "...", "timeoutSeconds": 300}``. Contributors and owners
only; every call is in the audit log.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from openbai.api.auth import AUTHENTICATED
from openbai.api.params import (
    ARM_ROUTE,
    JOB,
    WS,
    ClusterName,
    ExperimentName,
    JobName,
    JsonBody,
    ResourceGroup,
    WorkspaceName,
)
from openbai.http.json_response import JSONResponse
from openbai.http.service import Service
from openbai.services import nodes

router = APIRouter(dependencies=[*AUTHENTICATED, *ARM_ROUTE], tags=["openbai"])

NodeId = Annotated[str, Path(alias="nodeId", min_length=1, max_length=255)]

_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["command"],
                    "properties": {
                        "command": {"type": "string", "description": "run by bash -lc"},
                        "timeoutSeconds": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": nodes.MAX_TIMEOUT,
                            "default": nodes.DEFAULT_TIMEOUT,
                        },
                    },
                }
            }
        },
    }
}


def _run(found: nodes.NodeCommand, timeout: int) -> JSONResponse:
    return JSONResponse(nodes.run_captured(found, timeout=timeout).to_wire())


@router.post(
    WS + "/clusters/{clusterName}/nodes/{nodeId}/exec",
    operation_id="Clusters_ExecOnNode",
    openapi_extra=_BODY,
)
def exec_on_cluster_node(
    app: Service,
    rg: ResourceGroup,
    ws: WorkspaceName,
    name: ClusterName,
    node_id: NodeId,
    body: JsonBody,
) -> JSONResponse:
    """Run a command on a node of the cluster; its exit code, stdout and stderr."""
    command, timeout = nodes.check_exec_request(body.get("command"), body.get("timeoutSeconds"))
    found = nodes.cluster_node_command(app, rg, ws, name, node_id, command)
    return _run(found, timeout)


@router.post(JOB + "/nodes/{nodeId}/exec", operation_id="Jobs_ExecOnNode", openapi_extra=_BODY)
def exec_on_job_node(
    app: Service,
    rg: ResourceGroup,
    ws: WorkspaceName,
    exp: ExperimentName,
    name: JobName,
    node_id: NodeId,
    body: JsonBody,
) -> JSONResponse:
    """Run a command on a node of a running job; its exit code, stdout and stderr."""
    command, timeout = nodes.check_exec_request(body.get("command"), body.get("timeoutSeconds"))
    found = nodes.job_node_command(app, rg, ws, exp, name, node_id, command)
    return _run(found, timeout)

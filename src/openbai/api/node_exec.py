"""openbai: a command on a node of a cluster or of a running job, through the server.

Batch AI's nodes had SSH; openbai's have none, so ``bai cluster node exec`` and ``bai job
node exec --exec CMD`` with ``--server`` come here: the server runs the command as the CLI
does where the installation is (services/nodes.py: in the node's sandbox; ``srun`` on
Slurm, ``--overlap`` in a job's allocation), with no terminal and a time limit, and answers
its exit code and output (the first MiB of each stream; ``stdoutTruncated`` says when more
was dropped). Body: ``{"command": "...", "timeoutSeconds": 300}``. Contributors and owners
only; every call is in the audit log.

The routes are coroutines: the command's wait (up to ``timeoutSeconds``) is on a thread of the
node commands' own pool (http/threads.py), never on one of the few request threads, so that
long commands do not hold up other callers' requests. A worker runs a bounded number at once,
and one token a smaller number: past either, 429 ``TooManyRequests`` at once, not a wait.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Path
from starlette.concurrency import run_in_threadpool

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
from openbai.http import threads
from openbai.http.caller import Caller
from openbai.http.errors import error_body
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


async def _run(caller: str, find: Callable[[], nodes.NodeCommand], timeout: int) -> JSONResponse:
    """Find the node command (a lookup, on a request thread) and run it on a node-command
    thread, in a slot of ``caller``'s; 429 when the worker or the token has none free."""
    with ExitStack() as held:
        try:
            held.enter_context(threads.node_command_slot(caller))
        except threads.NoSlotError as busy:
            return JSONResponse(error_body("TooManyRequests", str(busy)), 429)
        found = await run_in_threadpool(find)
        output = await threads.run_node_command(partial(nodes.run_captured, found, timeout=timeout))
    return JSONResponse(output.to_wire())


@router.post(
    WS + "/clusters/{clusterName}/nodes/{nodeId}/exec",
    operation_id="Clusters_ExecOnNode",
    openapi_extra=_BODY,
)
async def exec_on_cluster_node(
    app: Service,
    caller: Caller,
    rg: ResourceGroup,
    ws: WorkspaceName,
    name: ClusterName,
    node_id: NodeId,
    body: JsonBody,
) -> JSONResponse:
    """Run a command on a node of the cluster; its exit code, stdout and stderr."""
    command, timeout = nodes.check_exec_request(body.get("command"), body.get("timeoutSeconds"))
    find = partial(nodes.cluster_node_command, app, rg, ws, name, node_id, command)
    return await _run(caller.name, find, timeout)


@router.post(JOB + "/nodes/{nodeId}/exec", operation_id="Jobs_ExecOnNode", openapi_extra=_BODY)
async def exec_on_job_node(
    app: Service,
    caller: Caller,
    rg: ResourceGroup,
    ws: WorkspaceName,
    exp: ExperimentName,
    name: JobName,
    node_id: NodeId,
    body: JsonBody,
) -> JSONResponse:
    """Run a command on a node of a running job; its exit code, stdout and stderr."""
    command, timeout = nodes.check_exec_request(body.get("command"), body.get("timeoutSeconds"))
    find = partial(nodes.job_node_command, app, rg, ws, exp, name, node_id, command)
    return await _run(caller.name, find, timeout)

"""The job most tests submit: one command on one node, its stdout/stderr in share ``logs`` of
account ``acct`` (a job's output must be on a volume it mounts), and the installation it runs in:
its volumes, and its inputs uploaded to them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import Result
from conftest import Bai

#: share ``logs`` of account ``acct``, mounted at ``$AZ_BATCHAI_JOB_MOUNT_ROOT/logs``
LOGS_SHARE = {
    "azureFileUrl": "https://acct.file.core.windows.net/logs",
    "relativeMountPath": "logs",
}


def logged_job(command: str, **properties: Any) -> dict[str, Any]:
    """The properties of a job running ``command``, with ``properties`` added or replaced."""
    return {
        "nodeCount": 1,
        "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
        "mountVolumes": {"azureFileShares": [LOGS_SHARE]},
        "customToolkitSettings": {"commandLine": command},
        **properties,
    }


def write_job(path: Path, command: str, **properties: Any) -> str:
    """A job.json of :func:`logged_job` at ``path``; its path as a string, for ``-f``."""
    path.write_text(json.dumps({"properties": logged_job(command, **properties)}))
    return str(path)


#: a real MPI program, with Debian's python3 and mpi4py (the host's, or the test image's):
#: each rank joins an allreduce of rank + 1 over all ranks (MPI_Init's wire-up between them
#: included) and prints ``allreduce RANK SUM``
ALLREDUCE = (
    "/usr/bin/python3 -c 'from mpi4py import MPI; c = MPI.COMM_WORLD; "
    'print("allreduce", c.rank, c.allreduce(c.rank + 1), flush=True)\''
)


def write_mpi_job(path: Path, rank_command: str, *, nodes: int = 2, **properties: Any) -> str:
    """A job.json of :func:`logged_job` whose ranks, one per node, run ``rank_command``
    (``customMpiSettings``); its path as a string, for ``-f``."""
    mpi = {"commandLine": rank_command, "processCount": nodes}
    job = logged_job("", nodeCount=nodes, customMpiSettings=mpi, **properties)
    del job["customToolkitSettings"]
    path.write_text(json.dumps({"properties": job}))
    return str(path)


def with_logs_share(bai: Bai) -> Bai:
    """Workspace ``ws``, experiment ``exp``, a 2-node cluster ``c1`` and share acct/logs."""
    bai("workspace", "create", "-n", "ws")
    bai("experiment", "create", "-w", "ws", "-n", "exp")
    bai("cluster", "create", "-w", "ws", "-n", "c1", "--nodes", "2")
    bai("storage", "account", "create", "-n", "acct")
    bai("storage", "share", "create", "--account", "acct", "-n", "logs")
    return bai


def upload_batch(bai: Callable[..., Result], source: Path, *options: str) -> Any:
    """``bai storage blob upload-batch --account acct -d data -s SOURCE OPTIONS...``: a local
    folder into container ``data`` of account ``acct``, as a user puts a job's inputs there; the
    transfer report it prints. ``bai`` is any runner of ``bai`` (in process or through a server)."""
    argv = ("storage", "blob", "upload-batch", "--account", "acct", "-d", "data", "-s", str(source))
    return json.loads(bai(*argv, *options).stdout)

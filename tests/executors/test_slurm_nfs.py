"""NFS file servers on a Slurm-backed cluster: `--nfs` on the cluster and `fileServers` in a job
mount the file server's real nfs-ganesha on every Slurm node (through openbai's FUSE filesystem
on libnfs, run by the node's runner); two-node jobs write their stdout and outputs there,
`bai job file list/stream` find them, and a second job reads what the first wrote."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from conftest import Bai
from nfs_fixture import missing
from workflow.conftest import write_job

from openbai.mounts.registry import fuse_available

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(not fuse_available(), reason="no FUSE"),
]

NODES = {"node1", "node2"}
#: the host's address on the test cluster's bridge (scripts/services/README-slurm.md)
HOST = os.environ.get("OPENBAI_SLURM_SUBNET", "10.77.0") + ".1"


@pytest.fixture
def nfs_on_slurm(on_slurm: Bai) -> Any:
    reason = missing()
    if reason is not None:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(reason)
    bai = on_slurm
    # the nodes reach this machine at its address on their bridge, not at 127.0.0.1
    bai.env["OPENBAI_FILE_SERVER_ADDRESS"] = HOST
    server = bai.json("file-server", "create", "-w", "ws", "-n", "nfs", "--disk-count", "1",
        "--disk-size", "10", "-s", "STANDARD_D14", "--storage-sku", "Standard_LRS")  # fmt: skip
    assert server["mountSettings"]["fileServerInternalIP"] == HOST
    yield server
    bai("file-server", "delete", "-w", "ws", "-n", "nfs", "-y")


def _run(bai: Bai, tmp_path: Path, name: str, cluster: str, props: dict[str, Any]) -> Any:
    path = write_job(tmp_path, props, f"{name}.json")
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", cluster, "-n", name, "-f", path)
    return bai.wait(name, timeout=120)


def test_two_slurm_nodes_write_to_the_file_server_and_a_job_reads_it(
    on_slurm: Bai, nfs_on_slurm: dict[str, Any], tmp_path: Path
) -> None:
    bai = on_slurm
    bai("cluster", "create", "-w", "ws", "-n", "snfs", "--executor", "slurm", "--partition",
        "debug", "--nfs", "nfs", "--nfs-mount-path", "nfs")  # fmt: skip
    writer = _run(
        bai,
        tmp_path,
        "writer",
        "snfs",
        {
            "nodeCount": 2,
            "stdOutErrPathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/nfs",
            "outputDirectories": [{"id": "OUT", "pathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/nfs"}],
            "customMpiSettings": {
                "processCount": 2,
                "commandLine": "bash -c 'echo from-$(hostname) > $AZ_BATCHAI_OUTPUT_OUT/$(hostname).txt'"
                " && echo written",
            },
        },
    )
    assert writer["executionState"] == "succeeded", writer.get("executionInfo")
    files = bai.json("job", "file", "list", "-w", "ws", "-e", "exp", "-j", "writer", "-d", "OUT")
    assert {f["name"] for f in files} == {f"{node}.txt" for node in NODES}
    out = bai("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "writer", "-f", "stdout.txt")
    assert "written" in out.stdout
    # on the file server's export, where every client of it finds them
    data = bai.home / "file-servers" / "default" / "ws" / "nfs" / "data"
    written = list(data.glob("*/*/workspaces/ws/experiments/exp/jobs/writer/*/outputs/*.txt"))
    assert sorted(p.read_text() for p in written) == [f"from-{n}\n" for n in sorted(NODES)]

    # a job on another Slurm cluster mounts the same file server by fileServers
    reader = _run(
        bai,
        tmp_path,
        "reader",
        "gpu",
        {
            "nodeCount": 1,
            "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/srv",
            "mountVolumes": {
                "fileServers": [
                    {
                        "fileServer": {"id": nfs_on_slurm["id"]},
                        "relativeMountPath": "srv",
                        "mountOptions": "rw",
                    }
                ]
            },
            "customToolkitSettings": {
                "commandLine": "cat $AZ_BATCHAI_JOB_MOUNT_ROOT/srv/*/*/workspaces/ws/experiments"
                "/exp/jobs/writer/*/outputs/node1.txt"
            },
        },
    )
    assert reader["executionState"] == "succeeded", reader.get("executionInfo")
    out = bai("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "reader", "-f", "stdout.txt")
    assert out.stdout == "from-node1\n"

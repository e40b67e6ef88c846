"""`unmanagedFileSystems` with `mount -t glusterfs 127.0.0.1:/VOLUME`: a job mounts a real
one-brick GlusterFS volume with GlusterFS's own FUSE client, writes there, and another job reads
what it wrote; no client is left behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import Bai
from gluster_fixture import Gluster, gluster_server  # noqa: F401 (the fixture)

from openbai.mounts.registry import fuse_available

from .conftest import write_job

pytestmark = pytest.mark.skipif(not fuse_available(), reason="no FUSE")

LOGS = {
    "azureFileShares": [
        {"azureFileUrl": "https://acct.file.core.windows.net/logs", "relativeMountPath": "logs"}
    ]
}


def _clients(gluster: Gluster) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "glusterfs" and f"--volfile-id={gluster.volume}" in cmdline:
            found.append(proc)
    return found


def _job(bai: Bai, tmp_path: Path, name: str, command: str, mount: str) -> dict[str, Any]:
    job = write_job(
        tmp_path,
        {
            "nodeCount": 1,
            "customToolkitSettings": {"commandLine": command},
            "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
            "mountVolumes": {
                **LOGS,
                "unmanagedFileSystems": [{"mountCommand": mount, "relativeMountPath": "gfs"}],
            },
        },
        f"{name}.json",
    )
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", name, "-f", job)
    return bai.wait(name, timeout=120)


def test_a_job_mounts_a_glusterfs_volume_with_its_client(
    recipes: Bai, gluster: Gluster, tmp_path: Path
) -> None:
    bai = recipes
    port = "" if gluster.port == 24007 else f" -o server-port={gluster.port}"
    mount = f"mount -t glusterfs {gluster.host}:/{gluster.volume}{port}"
    before = {p.pid for p in _clients(gluster)}
    writer = _job(
        bai,
        tmp_path,
        "writer",
        "set -e; mkdir -p $AZ_BATCHAI_JOB_MOUNT_ROOT/gfs/run; head -c 2000000 /dev/urandom"
        " > $AZ_BATCHAI_JOB_MOUNT_ROOT/gfs/run/w.bin; sha256sum < $AZ_BATCHAI_JOB_MOUNT_ROOT/gfs/run/w.bin"
        " | cut -d' ' -f1 > $AZ_BATCHAI_JOB_MOUNT_ROOT/gfs/run/sum; findmnt -n -o FSTYPE --target $AZ_BATCHAI_JOB_MOUNT_ROOT/gfs | sort -u",
        mount,
    )
    assert writer["executionState"] == "succeeded", bai(
        "job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "writer", "-f", "stderr.txt"
    ).stdout
    out = bai("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "writer", "-f", "stdout.txt")
    assert out.stdout == "fuse.glusterfs\n"  # the job saw GlusterFS's own client, not a copy
    # the files are on the volume's brick
    assert (gluster.brick / "run" / "w.bin").stat().st_size == 2000000
    reader = _job(
        bai,
        tmp_path,
        "reader",
        "cd $AZ_BATCHAI_JOB_MOUNT_ROOT/gfs/run && test \"$(sha256sum < w.bin | cut -d' ' -f1)\""
        ' = "$(cat sum)" && echo same',
        mount,
    )
    assert reader["executionState"] == "succeeded", reader.get("executionInfo")
    out = bai("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "reader", "-f", "stdout.txt")
    assert out.stdout == "same\n"
    # each job's client ended with the job
    assert {p.pid for p in _clients(gluster)} <= before


def test_a_glusterfs_volume_that_does_not_exist_fails_the_job_at_start(
    recipes: Bai, gluster: Gluster, tmp_path: Path
) -> None:
    bai = recipes
    mount = f"mount -t glusterfs {gluster.host}:/novolume"
    job = _job(bai, tmp_path, "missing", "echo never", mount)
    assert job["executionState"] == "failed"
    error = job["executionInfo"]["errors"][0]
    assert error["code"] == "AZFMountError"
    assert "glusterfs 127.0.0.1:/novolume" in error["message"]


def test_output_on_a_glusterfs_volume_is_refused_naming_the_field(
    recipes: Bai, tmp_path: Path
) -> None:
    bai = recipes
    job = write_job(
        tmp_path,
        {
            "nodeCount": 1,
            "customToolkitSettings": {"commandLine": "echo never"},
            "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/gfs",
            "mountVolumes": {
                "unmanagedFileSystems": [
                    {"mountCommand": "mount -t glusterfs h:/gv0", "relativeMountPath": "gfs"}
                ]
            },
        },
    )
    result = bai("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "j", "-f", job,
                 expect=2)  # fmt: skip
    assert "properties.stdOutErrPathPrefix: $AZ_BATCHAI_JOB_MOUNT_ROOT/gfs is on a GlusterFS" in (
        result.stderr
    )
    assert bai.json("job", "list", "-w", "ws", "-e", "exp") == []

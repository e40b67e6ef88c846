"""A full disk under ``$OPENBAI_HOME`` (a small tmpfs): the job that filled it fails with
``DiskFull`` naming the file and the volume, never ``NodeLost``, and commands answer with one
line and a non-zero exit code, never a traceback."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Bai
from polling import wait_until

from .conftest import custom_job, write_job


def fill(path: Path) -> None:
    """Write ``path`` until the disk is full (to its last byte)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for size in (1024 * 1024, 4096, 1):
            try:
                while os.write(fd, bytes(size)):
                    pass
            except OSError as e:
                assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)


@pytest.fixture
def bai_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The installation on a tmpfs of its own, 64 MiB."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield {
        "OPENBAI_HOME": str(disk / "openbai"),
        "OPENBAI_DISPATCHER_IDLE_EXIT": "5",
        "BAI_SERVER": "",
        "AZURE_BATCHAI_STORAGE_ACCOUNT": "",
    }
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_commands_on_a_full_disk_answer_in_one_line(workspace: Bai) -> None:
    bai = workspace
    fill(bai.home / "filler")
    created = bai("workspace", "create", "-n", "more", expect=None)
    assert created.exit_code == 1
    assert len(created.stderr.splitlines()) == 1, created.stderr
    assert created.stderr.startswith("ERROR: ") and "space" in created.stderr
    listed = bai("job", "list", "-w", "ws", "-e", "exp", expect=None)
    assert "Traceback" not in listed.stderr
    assert listed.exit_code == 0 or len(listed.stderr.splitlines()) == 1, listed.stderr
    (bai.home / "filler").unlink()
    bai("workspace", "create", "-n", "more")


def test_a_job_that_fills_the_disk_fails_with_disk_full(recipes: Bai, tmp_path: Path) -> None:
    bai = recipes
    # fills the node's disk (here the installation's), then ends: the runner's next lines
    # (the execution log on the logs share, on the same disk) find no room
    command = "head -c 100000000 /dev/zero > $AZ_BATCHAI_JOB_TEMP/filler.bin; echo after"
    job = write_job(tmp_path, custom_job(command), "fill.json")
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "fill", "-f", job)
    # an operator frees the disk once the job's runner has reported its end
    results = bai.home / "runs"
    wait_until(lambda: list(results.glob("*/job.result.json")), "the runner's report", 60)
    for filler in (bai.home / "nodes").rglob("filler.bin"):
        filler.unlink()
    shown = bai.wait("fill")
    assert shown["executionState"] == "failed"
    errors = shown["executionInfo"]["errors"]
    assert [e["code"] for e in errors] == ["DiskFull"], errors
    # the file the runner could not write, on the disk the job filled (the node's)
    details = {d["name"]: d["value"] for d in errors[0]["details"]}
    assert details["path"].startswith(str(bai.home)), details
    assert details["volume"].startswith("the node's disk"), details
    assert details["path"] in errors[0]["message"]


def test_a_job_its_node_has_no_room_to_start_fails_with_disk_full(
    recipes: Bai, tmp_path: Path
) -> None:
    """The run directories' disk is full when the job is picked: it ends ``DiskFull`` naming
    what could not be written, not ``running`` with no runner and then ``NodeLost``."""
    bai = recipes
    runs = bai.home / "runs"
    runs.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(runs)], check=True)
    try:
        fill(runs / "filler")
        job = write_job(tmp_path, custom_job("echo never"), "late.json")
        bai("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "late", "-f", job)
        ended = bai.wait("late", timeout=30)
        assert ended["executionState"] == "failed"
        (error,) = ended["executionInfo"]["errors"]
        assert error["code"] == "DiskFull", error
        assert "no space left to start the job" in error["message"]
        assert str(runs) in error["message"]
    finally:
        subprocess.run(["umount", "-l", str(runs)], check=False)

"""``mountOptions`` with ``ro``: a volume mounted read-only can be read by the job and not
changed by it, and the job's execution log says so, with the options openbai's own clients
do not take (a file server's export read-only through FUSE: tests/workflow/test_nfs.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import Bai

from .conftest import LOGS_AND_SCRIPTS, custom_job, storage_dir, write_job

#: reads the dataset, then tries to add, change and remove files in it
TRIES = (
    "cat $AZ_BATCHAI_JOB_MOUNT_ROOT/data/in.txt; cd $AZ_BATCHAI_JOB_MOUNT_ROOT/data; "
    "for try in 'echo x > new.txt' 'echo x >> in.txt' 'rm in.txt' 'mkdir sub'; do "
    '  if ( eval "$try" ) 2>/dev/null; then echo changed: $try; else echo refused: $try; fi; '
    "done"
)
REFUSED = (
    "dataset\nrefused: echo x > new.txt\nrefused: echo x >> in.txt\n"
    "refused: rm in.txt\nrefused: mkdir sub\n"
)


def _run(bai: Bai, tmp_path: Path, name: str, mount_options: str | None) -> dict[str, str]:
    blob = {"accountName": "acct", "containerName": "data", "relativeMountPath": "data"}
    if mount_options is not None:
        blob["mountOptions"] = mount_options
    volumes = {**LOGS_AND_SCRIPTS, "azureBlobFileSystems": [blob]}
    job = write_job(tmp_path, custom_job(TRIES, mountVolumes=volumes), f"{name}.json")
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", name, "-f", job)
    done = bai.wait(name)
    assert done["executionState"] == "succeeded", done
    return {
        f: bai("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", name, "-f", f).stdout
        for f in ("stdout.txt", "execution.log")
    }


@pytest.mark.skipif(
    shutil.which("bwrap") is None or os.getuid() != 0,
    reason="an embedded volume is made read-only by the job's sandbox (root, bubblewrap)",
)
def test_an_embedded_container_mounted_ro_is_read_and_left_as_it_was(
    recipes: Bai, tmp_path: Path
) -> None:
    bai = recipes
    source = tmp_path / "dataset"
    source.mkdir()
    (source / "in.txt").write_text("dataset\n")
    bai("storage", "blob", "upload-batch", "--account", "acct", "-d", "data", "-s", str(source),
        "--no-progress")  # fmt: skip

    shown = _run(bai, tmp_path, "reader", "-o ro -o attr_timeout=240")
    assert shown["stdout.txt"] == REFUSED
    assert "data is read-only (mountOptions '-o ro -o attr_timeout=240')" in shown["execution.log"]
    assert (
        "mount options not applied by openbai's own clients: attr_timeout=240"
        in (shown["execution.log"])
    )
    data = storage_dir(bai, "acct", "blob", "data")
    assert sorted(p.name for p in data.iterdir()) == ["in.txt"]
    assert (data / "in.txt").read_text() == "dataset\n"

    # without ro (and with rw last) the same job changes it
    writer = _run(bai, tmp_path, "writer", "ro,rw")
    assert writer["stdout.txt"].splitlines()[1:] == [
        "changed: echo x > new.txt",
        "changed: echo x >> in.txt",
        "changed: rm in.txt",
        "changed: mkdir sub",
    ]
    assert "data is read-only" not in writer["execution.log"]
    assert sorted(p.name for p in data.iterdir()) == ["new.txt", "sub"]

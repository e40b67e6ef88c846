"""A job whose job.json mounts a blob container of an Azure account (Azurite), end to end:
inputs read and outputs written through the mount, outputs seen while the job runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azurite_fixture import Azurite, AzuriteProcess, require_node
from conftest import Bai

pytestmark = [pytest.mark.fuse, pytest.mark.azurite]

JOB = ["-w", "ws", "-e", "exp", "-j", "j1"]


TRAIN = """
import os, pathlib, sys, time
inp = pathlib.Path(os.environ['AZ_BATCHAI_INPUT_DATASET'])
out = pathlib.Path(os.environ['AZ_BATCHAI_OUTPUT_MODEL'])
go = pathlib.Path(sys.argv[1])
names = sorted(p.name for p in inp.iterdir())
print('inputs:', names, flush=True)
total = sum(len((inp / n).read_bytes()) for n in names)
with open(out / 'progress.txt', 'w') as log:
    log.write(f'epoch 0 of {total} bytes\\n')
    log.flush()
    deadline = time.time() + 40
    while not go.exists() and time.time() < deadline:
        time.sleep(0.1)
    log.write('epoch 1\\n')
(out / 'model.tmp').write_text(str(total))
os.rename(out / 'model.tmp', out / 'model.txt')
"""


def job_json(tmp_path: Path, command: str, container: str) -> str:
    properties: dict[str, Any] = {
        "nodeCount": 1,
        "customToolkitSettings": {"commandLine": command},
        "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/data",
        "mountVolumes": {
            "azureBlobFileSystems": [
                {"accountName": "acct", "containerName": container, "relativeMountPath": "data"}
            ]
        },
        "inputDirectories": [{"id": "DATASET", "path": "$AZ_BATCHAI_JOB_MOUNT_ROOT/data/mnist"}],
        "outputDirectories": [{"id": "MODEL", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/data"}],
    }
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"properties": properties}))
    return str(path)


def register(bai: Bai, azurite: Azurite, tmp_path: Path) -> str:
    """Account ``acct`` on ``azurite`` with a container holding mnist/{0,1,2}.png."""
    bai("storage", "account", "create", "-n", "acct", "--kind", "azure",
        "--connection-string", azurite.connection_string)  # fmt: skip
    container = f"data-{uuid.uuid4().hex[:10]}"
    bai("storage", "container", "create", "--account", "acct", "-n", container)
    dataset = tmp_path / "mnist"
    dataset.mkdir()
    for i in range(3):
        (dataset / f"{i}.png").write_bytes(bytes([i]) * 1000)
    bai("storage", "blob", "upload-batch", "--account", "acct", "-d", container, "-s",
        str(dataset), "--destination-path", "mnist", "--no-progress")  # fmt: skip
    (tmp_path / "train.py").write_text(TRAIN)
    return container


def files(bai: Bai, directory: str = "MODEL") -> dict[str, Any]:
    listed = bai.json("job", "file", "list", *JOB, "-d", directory)
    return {f["name"]: f for f in listed}


def wait_until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def start_training(bai: Bai, tmp_path: Path, container: str, gates: Path) -> Path:
    # the script and the go-ahead where a sandboxed job sees them (not in the host's /tmp)
    shutil.copy(tmp_path / "train.py", gates / "train.py")
    go = gates / "go"
    command = f"python3 {gates / 'train.py'} {go}"
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "j1", "-f",
        job_json(tmp_path, command, container))  # fmt: skip
    return go


def state(bai: Bai) -> str:
    return str(bai.json("job", "show", "-w", "ws", "-e", "exp", "-n", "j1")["executionState"])


def test_job_reads_and_writes_a_blob_container_through_fuse(
    workspace: Bai, azurite: Azurite, fuse: None, tmp_path: Path, gates: Path
) -> None:
    bai = workspace
    container = register(bai, azurite, tmp_path)
    go = start_training(bai, tmp_path, container, gates)
    # a running job's output is in the container within seconds, listed and streamed
    wait_until(lambda: files(bai).get("progress.txt", {}).get("contentLength", 0) > 0)
    assert state(bai) == "running"
    follower = subprocess.Popen(  # `bai job file stream` follows the file while it grows
        [str(Path(sys.executable).parent / "bai"), "job", "file", "stream", *JOB, "-d", "MODEL",
         "-f", "progress.txt"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, **bai.env},
    )  # fmt: skip
    assert follower.stdout is not None
    assert follower.stdout.readline() == "epoch 0 of 3000 bytes\n"
    assert state(bai) == "running"
    go.touch()
    job = bai.wait("j1")
    rest, _ = follower.communicate(timeout=30)
    assert job["executionState"] == "succeeded", job
    assert rest == "epoch 1\n"
    assert sorted(files(bai)) == ["model.txt", "progress.txt"]
    model = bai("job", "file", "stream", *JOB, "-d", "MODEL", "-f", "model.txt").stdout
    assert model == "3000"
    stdout = bai("job", "file", "stream", *JOB, "-f", "stdout.txt").stdout
    assert stdout == "inputs: ['0.png', '1.png', '2.png']\n"
    log = bai("job", "file", "stream", *JOB, "-f", "execution.log").stdout
    assert "with FUSE" in log


@pytest.fixture
def copy_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nodes without FUSE (set before the dispatcher, and so the runners, start)."""
    monkeypatch.setenv("OPENBAI_DISABLE_FUSE", "1")
    monkeypatch.setenv("OPENBAI_MOUNT_COPY_INTERVAL", "0.5")


@pytest.fixture
def short_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENBAI_MOUNT_FLUSH_TIMEOUT", "2")


def test_without_fuse_the_job_runs_in_copy_mode_and_says_so(
    copy_mode: None, workspace: Bai, azurite: Azurite, tmp_path: Path, gates: Path
) -> None:
    bai = workspace
    container = register(bai, azurite, tmp_path)
    go = start_training(bai, tmp_path, container, gates)
    wait_until(lambda: files(bai).get("progress.txt", {}).get("contentLength", 0) > 0)
    assert state(bai) == "running"
    go.touch()
    job = bai.wait("j1")
    assert job["executionState"] == "succeeded", job
    assert sorted(files(bai)) == ["model.txt", "progress.txt"]
    progress = bai("job", "file", "stream", *JOB, "-d", "MODEL", "-f", "progress.txt").stdout
    assert progress == "epoch 0 of 3000 bytes\nepoch 1\n"
    log = bai("job", "file", "stream", *JOB, "-f", "execution.log").stdout
    assert "OPENBAI_DISABLE_FUSE=1" in log and "copy mode" in log


def test_outputs_that_cannot_be_stored_fail_the_job(
    short_retries: None, workspace: Bai, app: Any, fuse: None, tmp_path: Path, gates: Path
) -> None:
    from openbai.services.accounts import create_account

    require_node()
    process = AzuriteProcess(tmp_path / "azurite")
    azurite = process.start()
    try:
        bai = workspace
        create_account(app, "acct", kind="azure",
                       options={"connection_string": azurite.connection_string, "retry_total": 0})  # fmt: skip
        bai("storage", "container", "create", "--account", "acct", "-n", "out")
        bai("storage", "account", "create", "-n", "local")  # for stdout, which must be on a volume
        bai("storage", "share", "create", "--account", "local", "-n", "logs")
        script = gates / "write.py"
        script.write_text(
            "import os, sys, time\n"
            "fd = os.open(os.path.join(os.environ['AZ_BATCHAI_JOB_MOUNT_ROOT'], 'out', 'result.txt'), os.O_WRONLY | os.O_CREAT)\n"
            "open(sys.argv[1], 'w').close()\n"  # tell the test the file is open
            "while not os.path.exists(sys.argv[2]): time.sleep(0.05)\n"
            "os.write(fd, b'the result')\n"
            "try:\n    os.close(fd)\nexcept OSError as e:\n    print('close failed:', e)\n"
        )  # fmt: skip
        # the job says the file is open on its logs share; the test's go-ahead is a gate
        opened = workspace.home / "storage" / "local" / "file" / "logs" / "opened"
        go = gates / "go"
        properties = {
            "nodeCount": 1,
            "customToolkitSettings": {
                "commandLine": f"python3 {script} $AZ_BATCHAI_JOB_MOUNT_ROOT/logs/opened {go}"
            },
            "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
            "mountVolumes": {
                "azureBlobFileSystems": [
                    {"accountName": "acct", "containerName": "out", "relativeMountPath": "out"}],
                "azureFileShares": [{"azureFileUrl": "https://local.file.core.windows.net/logs",
                                     "relativeMountPath": "logs"}]},
        }  # fmt: skip
        (tmp_path / "job.json").write_text(json.dumps({"properties": properties}))
        bai("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "j1",
            "-f", str(tmp_path / "job.json"))  # fmt: skip
        wait_until(opened.exists)
        process.stop()  # and never again
        go.touch()
        job = bai.wait("j1")
        assert job["executionState"] == "failed", job
        errors = job["executionInfo"]["errors"]
        assert errors[0]["code"] == "OutputUploadFailed", errors
        assert "result.txt" in errors[0]["message"]
    finally:
        process.stop()

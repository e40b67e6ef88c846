"""The same job files on a local cluster and on a Slurm cluster give the same results: the
same files in the same places, the same output."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from conftest import Bai
from workflow.conftest import LOGS_AND_SCRIPTS, storage_dir, write_job

from .test_slurm_jobs import SEG, upload_script

pytestmark = pytest.mark.slurm

TRAIN = """\
import json, os, sys, time
inputs = sorted(os.listdir(os.environ["AZ_BATCHAI_INPUT_DATASET"]))
role = sys.argv[1] if len(sys.argv) > 1 else "single"
index = os.environ.get("AZ_BATCHAI_TASK_INDEX", "0")
print(role, index, "saw", inputs)
print("warning from", role, index, file=sys.stderr)
if role in ("single", "master"):
    with open(os.path.join(os.environ["AZ_BATCHAI_OUTPUT_MODEL"], "model.json"), "w") as f:
        json.dump({"inputs": inputs}, f)
ready = os.path.join(os.environ["AZ_BATCHAI_SHARED_JOB_TEMP"], "ps-ready")
if role == "ps":  # serves until the workers are done; they wait for its report
    sys.stdout.flush(); sys.stderr.flush(); open(ready, "w").close()
    time.sleep(30)
elif role in ("master", "worker"):
    while not os.path.exists(ready):
        time.sleep(0.05)
"""

COMMON: dict[str, Any] = {
    "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
    "mountVolumes": LOGS_AND_SCRIPTS,
    "inputDirectories": [{"id": "DATASET", "path": "$AZ_BATCHAI_JOB_MOUNT_ROOT/data/mnist"}],
    "outputDirectories": [
        {"id": "MODEL", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs", "pathSuffix": "Models"}
    ],
    "jobPreparation": {"commandLine": "echo preparing; ls $AZ_BATCHAI_INPUT_DATASET"},
}
SCRIPT = "$AZ_BATCHAI_JOB_MOUNT_ROOT/scripts/train.py"
RECIPES = {
    "custom": {
        "nodeCount": 1,
        "customToolkitSettings": {"commandLine": f"python3 {SCRIPT}"},
        **COMMON,
    },
    "tensorflow": {
        "nodeCount": 2,
        "tensorFlowSettings": {
            "pythonScriptFilePath": SCRIPT,
            "pythonInterpreterPath": "python3",
            "masterCommandLineArgs": "master",
            "workerCommandLineArgs": "worker",
            "parameterServerCommandLineArgs": "ps",
        },
        **COMMON,
    },
}


def results(bai: Bai, job: dict[str, Any]) -> dict[str, str]:
    """Every file the job left in storage, by path below its segment (node ids made neutral)."""
    root = storage_dir(bai, "acct", "file", "logs") / job[SEG]
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            name = re.sub(r"-(node\d|c1-\d)(?=\.)", "-<node>", str(path.relative_to(root)))
            text = path.read_text()
            found[name] = "<log>" if name.startswith("stdouterr/execution") else text
    return found


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_a_job_file_gives_the_same_results_on_local_and_slurm(
    on_slurm: Bai, tmp_path: Path, recipe: str
) -> None:
    bai = on_slurm
    data = tmp_path / "mnist"
    data.mkdir()
    for i in range(3):
        (data / f"{i}.png").write_text(f"image {i}")
    bai("storage", "blob", "upload-batch", "--account", "acct", "-d", "data", "-s", str(data),
        "--destination-path", "mnist")  # fmt: skip
    upload_script(bai, tmp_path, "train.py", TRAIN)
    job_file = write_job(tmp_path, RECIPES[recipe])
    seen = {}
    for cluster in ("c1", "gpu"):
        name = f"{recipe}-{cluster}"
        bai("job", "create", "-w", "ws", "-e", "exp", "-c", cluster, "-n", name, "-f", job_file)
        job = bai.wait(name, timeout=50)
        assert job["executionState"] == "succeeded", (cluster, job)
        seen[cluster] = results(bai, job)
    assert seen["c1"] == seen["gpu"]
    assert "outputs/Models/model.json" in seen["gpu"]

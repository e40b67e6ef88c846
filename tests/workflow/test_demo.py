"""The README's workflow, step by step as a user types it: the demo's dataset in a blob
container, a cluster with auto-storage, the demo's training script on its share, the demo's
job.json, and the model in the job's MODEL output directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import REPO, Bai

DEMO = REPO / "examples" / "demo"


def _auto_storage(bai: Bai) -> str:
    query = "[?resourceGroup=='batchaiautostorage'].name | [0]"
    return bai("storage", "account", "list", "--query", query, "-o", "tsv").stdout.strip()


def _demo_cluster(bai: Bai, tmp_path: Path, dataset: Path) -> None:
    bai("storage", "account", "create", "-n", "demodata")
    bai("storage", "container", "create", "--account", "demodata", "-n", "mnist")
    bai("storage", "blob", "upload-batch", "--account", "demodata", "-d", "mnist",
        "-s", str(dataset))  # fmt: skip
    bai("workspace", "create", "-n", "demo")
    bai("experiment", "create", "-w", "demo", "-n", "mnist")
    bai("cluster", "create", "-w", "demo", "-n", "nc6", "--nodes", "2", "--use-auto-storage")
    bai("storage", "file", "upload-batch", "--account", _auto_storage(bai), "-d", "batchaishare",
        "-s", str(DEMO / "scripts"), "--destination-path", "scripts")  # fmt: skip


def test_the_readme_workflow_trains_the_demo_model(bai: Bai, tmp_path: Path) -> None:
    dataset = tmp_path / "mnist"
    subprocess.run([sys.executable, str(DEMO / "make_dataset.py"), str(dataset)], check=True)
    _demo_cluster(bai, tmp_path, dataset)
    job = ("-w", "demo", "-e", "mnist")
    bai("job", "create", *job, "-c", "nc6", "-n", "train", "-f", str(DEMO / "job.json"))

    streamed = bai("job", "file", "stream", *job, "-j", "train", "-f", "stdout.txt").stdout
    assert "metric: loss=" in streamed and "model written to" in streamed
    bai("job", "wait", *job, "-n", "train")
    logs = bai("job", "file", "list", *job, "-j", "train", "-o", "table").stdout
    assert all(name in logs for name in ("execution.log", "stdout.txt", "stderr.txt"))
    model = bai.json("job", "file", "list", *job, "-j", "train", "-d", "MODEL")
    assert [f["name"] for f in model] == ["model.json"]


def test_the_demo_job_without_the_dataset_says_what_is_missing(bai: Bai, tmp_path: Path) -> None:
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "readme.txt").write_text("not the dataset")
    _demo_cluster(bai, tmp_path, tmp_path / "mnist")
    job = ("-w", "demo", "-e", "mnist")
    bai("job", "create", *job, "-c", "nc6", "-n", "train", "-f", str(DEMO / "job.json"))

    assert bai("job", "wait", *job, "-n", "train", expect=1).exit_code == 1
    stderr = bai("job", "file", "stream", *job, "-j", "train", "-f", "stderr.txt").stdout
    assert "make the dataset with examples/demo/make_dataset.py" in stderr
    assert "Traceback" not in stderr

"""Batch AI's own recipe job files run unchanged, with small stand-ins for the training code.

The recipes name Docker images that cannot be pulled here: the installation runs no image
(``OPENBAI_CONTAINER_RUNTIME=none``), so they run on the host, and the execution log says so. Their job preparation
commands (`pip install keras`, `apt install ...`) reach stand-ins on PATH, so the tests
talk to nothing but this machine.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import SAMPLES, Bai

from .conftest import storage_dir

pytestmark = pytest.mark.usefixtures("samples")  # skipped without ../shared, failed in CI

RECIPES = SAMPLES / "batchai-recipes"
SNIPPETS = SAMPLES / "doc-snippets"

STAND_IN = (
    "import json, os, sys\n"
    "rank = os.environ.get('OMPI_COMM_WORLD_RANK') or os.environ.get('AZ_BATCHAI_TASK_INDEX') or '0'\n"
    "print(json.dumps({'script': os.path.basename(sys.argv[0]), 'argv': sys.argv[1:], 'rank': rank}))\n"
    "for key, value in os.environ.items():\n"
    "    if key.startswith('AZ_BATCHAI_OUTPUT_'):\n"
    "        open(os.path.join(value, f'done-{rank}.txt'), 'w').write('ok')\n"
)

# recipe path -> (stand-in script paths inside the scripts share, expected stdout files)
CASES = {
    "TensorFlow/TensorFlow-GPU/job.json": (["tensorflow/convolutional.py"], ["stdout-wk-0.txt"]),
    "Keras/Keras-GPU/job_tensorflow.json": (
        ["keras/mnist_cnn.py"],
        ["stdout-wk-0.txt", "stdout-job_prep.txt"],
    ),
    "CNTK/CNTK-GPU-Python/job.json": (["cntk/ConvNet_MNIST.py"], ["stdout.txt"]),
    "PyTorch/PyTorch-GPU-Distributed-Gloo/job.json": (
        ["pytorch/mnist_trainer.py"],
        ["stdout-0.txt", "stdout-1.txt"],
    ),
    "Caffe2/Caffe2-GPU-Distributed/job.json": (
        ["caffe2/resnet50_trainer.py"],
        ["stdout-0.txt", "stdout-1.txt"],
    ),
    "Chainer/Chainer-GPU-Distributed/job.json": (["chainer/train_mnist.py"], ["stdout.txt"]),
    "Horovod/Horovod-PyTorch/job.json": (
        ["horovod/pytorch_mnist.py"],
        ["stdout.txt", "stdout-job_prep-c1-0.txt"],
    ),
}


@pytest.fixture(autouse=True)
def no_images(bai_env: dict[str, str]) -> None:
    """Images run on the host: set before the installation's dispatcher starts."""
    bai_env["OPENBAI_CONTAINER_RUNTIME"] = "none"


@pytest.fixture
def fake_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`pip`, `apt` and `cntk` stand-ins first on PATH (the dispatcher inherits it)."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    for tool in ("pip", "apt"):
        (bin_dir / tool).write_text(f'#!/bin/sh\necho {tool} stand-in: "$@"\n')
    (bin_dir / "cntk").write_text('#!/bin/sh\necho cntk stand-in: "$@"\n')
    for stand_in in bin_dir.iterdir():
        stand_in.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


@pytest.fixture
def recipe_storage(fake_tools: Path, recipes: Bai, tmp_path: Path) -> Bai:
    # fake_tools comes first: the dispatcher started by the first command inherits PATH
    scripts = tmp_path / "scripts-src"
    for _, (paths, _) in CASES.items():
        for rel in paths:
            (scripts / rel).parent.mkdir(parents=True, exist_ok=True)
            (scripts / rel).write_text(STAND_IN)
    recipes(
        "storage", "file", "upload-batch", "--account", "acct", "-d", "scripts", "-s", str(scripts)
    )
    # the recipes that keep their model in $AZ_BATCHAI_MOUNT_ROOT/external expect their cluster
    # to mount a share there, as their READMEs create it (az batchai cluster create --afs-name)
    recipes("storage", "share", "create", "--account", "acct", "-n", "models")
    recipes(
        "cluster", "create", "-w", "ws", "-n", "ext", "--nodes", "2",
        "--storage-account-name", "acct", "--afs-name", "models", "--afs-mount-path", "external",
    )  # fmt: skip
    return recipes


@pytest.mark.parametrize("recipe", sorted(CASES))
def test_recipe_runs_unchanged(recipe_storage: Bai, recipe: str) -> None:
    bai = recipe_storage
    name = recipe.split("/")[1].lower()
    cluster = "ext" if "$AZ_BATCHAI_MOUNT_ROOT/external" in (RECIPES / recipe).read_text() else "c1"
    bai(
        "job",
        "create",
        "-w",
        "ws",
        "-e",
        "exp",
        "-c",
        cluster,
        "-n",
        name,
        "-f",
        str(RECIPES / recipe),
        "--storage-account-name",
        "acct",
    )
    job = bai.wait(name)
    assert job["executionState"] == "succeeded", job["executionInfo"]
    stdouterr = (
        storage_dir(bai, "acct", "file", "logs")
        / job["jobOutputDirectoryPathSegment"]
        / "stdouterr"
    )
    _, named = CASES[recipe]
    expected = [f.replace("-c1-", f"-{cluster}-") for f in named]  # per-node names
    present = {p.name for p in stdouterr.iterdir()}
    assert set(expected) <= present, present
    runs = [
        json.loads(line)
        for f in expected
        if f.startswith("stdout-") or f == "stdout.txt"
        for line in (stdouterr / f).read_text().splitlines()
        if line.startswith("{")
    ]
    assert runs, f"the stand-in script did not run: {present}"
    logs = [p.read_text() for p in stdouterr.glob("execution*.log")]
    assert any(
        "no container runtime (none) is used, so the job runs on the host" in log for log in logs
    )


def test_recipe_placeholders_need_an_account(recipe_storage: Bai) -> None:
    out = recipe_storage(
        "job",
        "create",
        "-w",
        "ws",
        "-e",
        "exp",
        "-c",
        "c1",
        "-n",
        "p",
        "-f",
        str(RECIPES / "TensorFlow/TensorFlow-GPU/job.json"),
        expect=2,
    )
    assert "<AZURE_BATCHAI_STORAGE_ACCOUNT>" in out.stderr
    assert "--storage-account-name" in out.stderr


def test_cntk_brainscript_2017_recipe_with_a_cluster_level_mount(
    recipe_storage: Bai, tmp_path: Path
) -> None:
    bai = recipe_storage
    bai("storage", "share", "create", "--account", "acct", "-n", "external")
    bai(
        "cluster",
        "create",
        "-w",
        "ws",
        "-n",
        "withext",
        "--nodes",
        "1",
        "--storage-account-name",
        "acct",
        "--afs-name",
        "external",
        "--afs-mount-path",
        "external",
    )
    bai(
        "job",
        "create",
        "-w",
        "ws",
        "-e",
        "exp",
        "-c",
        "withext",
        "-n",
        "bs",
        "-f",
        str(RECIPES / "CNTK/CNTK-GPU-BrainScript/job.json"),
    )
    job = bai.wait("bs")
    assert job["executionState"] == "succeeded", job["executionInfo"]
    external = storage_dir(bai, "acct", "file", "external") / job["jobOutputDirectoryPathSegment"]
    line = (external / "stdouterr" / "stdout.txt").read_text()
    assert line.startswith("cntk stand-in: configFile=")
    assert "/mounts/external/cntk_samples/ConvNet_MNIST.cntk" in line
    assert (
        f"outputDir={job['jobOutputDirectoryPathSegment']}" not in line
    )  # expanded to a node path
    assert "/outputs/Models" in line
    assert (external / "outputs" / "Models").is_dir()


@pytest.mark.parametrize(
    ("command", "snippet", "field"),
    [
        pytest.param(
            ("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "kv"),
            "job__cntk_reference_full.json",
            "properties.secrets[1].valueSecretReference",
            id="job-with-a-key-vault-secret",
        ),
        pytest.param(
            ("cluster", "create", "-w", "ws", "-n", "kv"),
            "cluster__setup_task_env_secrets.json",
            "properties.nodeSetup.setupTask.secrets[1].valueSecretReference",
            id="cluster-with-a-setup-task-secret-reference",
        ),
        pytest.param(
            ("cluster", "create", "-w", "ws", "-n", "multi", "--storage-account-name", "acct"),
            "cluster__multiple_mount_volumes.json",
            "properties.nodeSetup.mountVolumes",
            id="cluster-with-several-mount-kinds",
        ),
    ],
)
def test_doc_snippet_openbai_cannot_run_is_refused_naming_the_field(
    recipe_storage: Bai, command: tuple[str, ...], snippet: str, field: str
) -> None:
    out = recipe_storage(*command, "-f", str(SNIPPETS / snippet), expect=2)
    assert field in out.stderr

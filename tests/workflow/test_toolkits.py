"""Each toolkit runs its processes the way Batch AI did, with its file names and role variables."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import Bai
from polling import wait_until

from .conftest import LOGS_AND_SCRIPTS, storage_dir, write_job

REPORT = (
    "import json, os, sys\n"
    "keys = ['AZ_BATCHAI_TASK_INDEX', 'AZ_BATCHAI_PS_HOSTS', 'AZ_BATCHAI_WORKER_HOSTS', 'TF_CONFIG',\n"
    "        'AZ_BATCHAI_PYTORCH_INIT_METHOD', 'AZ_BATCHAI_PYTORCH_BACKEND', 'AZ_BATCH_NODE_ID',\n"
    "        'OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE', 'AZ_BATCHAI_OUTPUT_OUT']\n"
    "print(json.dumps({'argv': sys.argv[1:], **{k: os.environ.get(k) for k in keys}}), flush=True)\n"
    "import time; time.sleep(float(os.environ.get('LINGER', '0')))\n"
)


@pytest.fixture
def report_script(recipes: Bai, tmp_path: Path) -> Bai:
    scripts = tmp_path / "scripts-src"
    scripts.mkdir()
    (scripts / "report.py").write_text(REPORT)
    # listens on the job's rendezvous port until the gate named by its argument opens
    (scripts / "listen.py").write_text(
        "import os, pathlib, socket, sys, time\n"
        "server = socket.create_server(('127.0.0.1', int(os.environ['MASTER_PORT'])))\n"
        "print(os.environ['MASTER_PORT'], flush=True)\n"
        "while not pathlib.Path(sys.argv[1]).exists():\n"
        "    time.sleep(0.05)\n"
    )
    # the second rank fails while the first still works
    (scripts / "fail_second.py").write_text(
        "import os, sys, time\n"
        "if os.environ['AZ_BATCHAI_TASK_INDEX'] == '1':\n"
        "    sys.exit(7)\n"
        "time.sleep(60)\n"
    )
    recipes(
        "storage", "file", "upload-batch", "--account", "acct", "-d", "scripts", "-s", str(scripts)
    )
    return recipes


def run_toolkit(
    bai: Bai,
    tmp_path: Path,
    name: str,
    settings: dict[str, Any],
    nodes: int = 2,
    *,
    cluster: str = "c1",
    wait: bool = True,
    **extra: object,
) -> tuple[dict[str, Any], Path]:
    props = {
        "nodeCount": nodes,
        **settings,
        "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
        "mountVolumes": LOGS_AND_SCRIPTS,
        "outputDirectories": [{"id": "OUT", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs"}],
        **extra,
    }
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
        write_job(tmp_path, props, f"{name}.json"),
    )
    job = bai.wait(name) if wait else bai.json("job", "show", "-w", "ws", "-e", "exp", "-n", name)
    return job, storage_dir(bai, "acct", "file", "logs") / job[
        "jobOutputDirectoryPathSegment"
    ] / "stdouterr"


def reports(folder: Path, name: str) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for line in (folder / name).read_text().splitlines()
        if line.startswith("{")
    ]


SCRIPT = "$AZ_BATCHAI_JOB_MOUNT_ROOT/scripts/report.py"


def test_tensorflow_distributed_lays_out_parameter_servers_and_workers(
    report_script: Bai, tmp_path: Path
) -> None:
    job, out = run_toolkit(
        report_script,
        tmp_path,
        "tf",
        {
            "tensorFlowSettings": {
                "pythonScriptFilePath": SCRIPT,
                "masterCommandLineArgs": "--role master --ps $AZ_BATCHAI_PS_HOSTS --task $AZ_BATCHAI_TASK_INDEX",
                "workerCommandLineArgs": "--role worker --task $AZ_BATCHAI_TASK_INDEX",
                "parameterServerCommandLineArgs": "--role ps --task $AZ_BATCHAI_TASK_INDEX",
                "parameterServerCount": 1,
                "workerCount": 2,
            }
        },
        # workers linger, so the parameter server reports before it is stopped
        environmentVariables=[{"name": "LINGER", "value": "1"}],
    )
    assert job["executionState"] == "succeeded", job
    files = sorted(p.name for p in out.iterdir())
    assert files == [
        "execution-c1-0.log",
        "execution-c1-1.log",
        "stderr-ps-0.txt",
        "stderr-wk-0.txt",
        "stderr-wk-1.txt",
        "stdout-ps-0.txt",
        "stdout-wk-0.txt",
        "stdout-wk-1.txt",
    ]
    (master,) = reports(out, "stdout-wk-0.txt")
    (worker,) = reports(out, "stdout-wk-1.txt")
    (ps,) = reports(out, "stdout-ps-0.txt")
    ps_hosts = master["AZ_BATCHAI_PS_HOSTS"].split(",")
    worker_hosts = master["AZ_BATCHAI_WORKER_HOSTS"].split(",")
    assert len(ps_hosts) == 1 and len(worker_hosts) == 2
    assert master["argv"] == ["--role", "master", "--ps", ps_hosts[0], "--task", "0"]
    assert worker["argv"] == ["--role", "worker", "--task", "1"]
    assert ps["argv"] == ["--role", "ps", "--task", "0"]
    config = json.loads(master["TF_CONFIG"])
    assert config == {
        "cluster": {"ps": ps_hosts, "worker": worker_hosts},
        "task": {"type": "master", "index": 0},
        "environment": "cloud",
    }
    assert json.loads(worker["TF_CONFIG"])["task"] == {"type": "worker", "index": 1}
    assert json.loads(ps["TF_CONFIG"])["task"] == {"type": "ps", "index": 0}
    # worker 0 shares node 0 with the parameter server and so listens on the next port
    ps_port = int(ps_hosts[0].rsplit(":", 1)[1])
    assert worker_hosts[0] == f"127.0.0.1:{ps_port + 1}"
    assert worker["AZ_BATCH_NODE_ID"] == "c1-1"


def test_tensorflow_single_node_runs_only_the_master(report_script: Bai, tmp_path: Path) -> None:
    job, out = run_toolkit(
        report_script,
        tmp_path,
        "tf1",
        {"tensorFlowSettings": {"pythonScriptFilePath": SCRIPT}},
        nodes=1,
    )
    assert job["executionState"] == "succeeded"
    assert sorted(p.name for p in out.iterdir()) == [
        "execution.log",
        "stderr-wk-0.txt",
        "stdout-wk-0.txt",
    ]
    (master,) = reports(out, "stdout-wk-0.txt")
    assert json.loads(master["TF_CONFIG"])["cluster"]["ps"] == []


def test_pytorch_runs_one_process_per_node_with_ranks(report_script: Bai, tmp_path: Path) -> None:
    job, out = run_toolkit(
        report_script,
        tmp_path,
        "pt",
        {
            "pyTorchSettings": {
                "pythonScriptFilePath": SCRIPT,
                "commandLineArgs": "--dist-url $AZ_BATCHAI_PYTORCH_INIT_METHOD --rank $AZ_BATCHAI_TASK_INDEX",
                "communicationBackend": "gloo",
            }
        },
    )
    assert job["executionState"] == "succeeded", job
    for rank in (0, 1):
        (r,) = reports(out, f"stdout-{rank}.txt")
        assert r["argv"][-2:] == ["--rank", str(rank)]
        assert r["AZ_BATCHAI_PYTORCH_BACKEND"] == "gloo"
        assert r["AZ_BATCHAI_PYTORCH_INIT_METHOD"].startswith("file://")
        assert r["argv"][1] == r["AZ_BATCHAI_PYTORCH_INIT_METHOD"]


def test_caffe2_runs_one_process_per_node(report_script: Bai, tmp_path: Path) -> None:
    job, out = run_toolkit(
        report_script,
        tmp_path,
        "c2",
        {
            "caffe2Settings": {
                "pythonScriptFilePath": SCRIPT,
                "commandLineArgs": "--shard_id $AZ_BATCHAI_TASK_INDEX",
            }
        },
    )
    assert job["executionState"] == "succeeded", job
    assert [reports(out, f"stdout-{k}.txt")[0]["argv"] for k in (0, 1)] == [
        ["--shard_id", "0"],
        ["--shard_id", "1"],
    ]


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="OpenMPI (mpirun) is not installed")
@pytest.mark.parametrize("toolkit", ["horovodSettings", "chainerSettings", "customMpiSettings"])
def test_mpi_toolkits_start_process_count_ranks_with_the_job_variables(
    report_script: Bai, tmp_path: Path, toolkit: str
) -> None:
    if toolkit == "customMpiSettings":
        settings = {"commandLine": f"python3 {SCRIPT} --from mpi", "processCount": 3}
    else:
        settings = {
            "pythonScriptFilePath": SCRIPT,
            "commandLineArgs": "--from mpi",
            "processCount": 3,
        }
    job, out = run_toolkit(report_script, tmp_path, "mpi", {toolkit: settings})
    assert job["executionState"] == "succeeded", job
    ranks = reports(out, "stdout.txt")
    assert sorted(int(r["OMPI_COMM_WORLD_RANK"]) for r in ranks) == [0, 1, 2]
    assert {r["OMPI_COMM_WORLD_SIZE"] for r in ranks} == {"3"}
    # every rank sees the job's variables (Batch AI issue #27)
    assert all(
        r["AZ_BATCHAI_OUTPUT_OUT"] and r["AZ_BATCHAI_OUTPUT_OUT"].endswith("/outputs")
        for r in ranks
    )
    assert all(r["argv"] == ["--from", "mpi"] for r in ranks)


def test_custom_toolkit_on_two_nodes_runs_once_on_the_first(
    report_script: Bai, tmp_path: Path
) -> None:
    job, out = run_toolkit(
        report_script,
        tmp_path,
        "custom2",
        {"customToolkitSettings": {"commandLine": f"python3 {SCRIPT}"}},
        jobPreparation={"commandLine": "echo prep on $AZ_BATCH_NODE_ID"},
    )
    assert job["executionState"] == "succeeded", job
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "execution-c1-0.log",
        "execution-c1-1.log",
        "stderr-job_prep-c1-0.txt",
        "stderr-job_prep-c1-1.txt",
        "stderr.txt",
        "stdout-job_prep-c1-0.txt",
        "stdout-job_prep-c1-1.txt",
        "stdout.txt",
    ]
    assert (out / "stdout-job_prep-c1-1.txt").read_text() == "prep on c1-1\n"
    assert len(reports(out, "stdout.txt")) == 1


def test_the_job_ends_with_the_exit_code_a_node_failed_with(
    report_script: Bai, tmp_path: Path
) -> None:
    job, _ = run_toolkit(
        report_script,
        tmp_path,
        "pt-fails",
        {
            "pyTorchSettings": {
                "pythonScriptFilePath": "$AZ_BATCHAI_JOB_MOUNT_ROOT/scripts/fail_second.py"
            }
        },
    )
    assert job["executionState"] == "failed", job
    # not the -1 of the first node, whose process was stopped because the second failed
    assert job["executionInfo"]["exitCode"] == 7
    assert [e["code"] for e in job["executionInfo"]["errors"]] == ["JobFailed"]


def test_job_preparation_failing_on_one_node_is_one_error_with_its_exit_code(
    report_script: Bai, tmp_path: Path
) -> None:
    job, _ = run_toolkit(
        report_script,
        tmp_path,
        "prep-fails",
        {"customToolkitSettings": {"commandLine": "echo never"}},
        jobPreparation={"commandLine": 'if [ "$AZ_BATCH_NODE_ID" = c1-1 ]; then exit 5; fi'},
    )
    assert job["executionState"] == "failed", job
    assert job["executionInfo"]["exitCode"] == 5
    (error,) = job["executionInfo"]["errors"]
    assert error["code"] == "JobPreparationFailed"
    assert "on node c1-1 with exit code 5" in error["message"]


def test_jobs_on_two_clusters_at_once_listen_on_ports_of_their_own(
    report_script: Bai, tmp_path: Path, gates: Path
) -> None:
    bai = report_script
    bai("cluster", "create", "-w", "ws", "-n", "c2", "--nodes", "1")
    gate = gates / "gate"
    listen = {
        "pyTorchSettings": {
            "pythonScriptFilePath": "$AZ_BATCHAI_JOB_MOUNT_ROOT/scripts/listen.py",
            "commandLineArgs": str(gate),
        }
    }

    def listening(name: str, stdout: Path) -> bool:
        """It printed its port (it listens), or it ended (it could not)."""
        if stdout.exists() and stdout.read_text().strip():
            return True
        shown = bai.json("job", "show", "-w", "ws", "-e", "exp", "-n", name)
        return shown["executionState"] in ("succeeded", "failed")

    ports = {}
    for name, cluster in (("on-c1", "c1"), ("on-c2", "c2")):
        # both on their cluster's first node: the same slot number, on the same host
        _, out = run_toolkit(bai, tmp_path, name, listen, 1, cluster=cluster, wait=False)
        stdout = out / "stdout-0.txt"
        wait_until(lambda: listening(name, stdout), f"{name} listening")  # noqa: B023
        ports[name] = stdout.read_text().strip()
    gate.touch()
    for name in ports:
        job = bai.wait(name)
        assert job["executionState"] == "succeeded", job
    assert ports["on-c1"] != ports["on-c2"], ports

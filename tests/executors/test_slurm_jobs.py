"""Jobs on a Slurm-backed cluster, end to end through ``bai``: one node and two, every toolkit
layout, the Batch AI environment on each node, setup task, queueing, terminate, failures."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conftest import Bai
from polling import after_dispatcher_rounds
from workflow.conftest import custom_job, storage_dir, toolkit_job, write_job

if TYPE_CHECKING:
    from slurm_fixture import SlurmCluster

pytestmark = pytest.mark.slurm

SEG = "jobOutputDirectoryPathSegment"
NODES = ["node1", "node2"]


def create(bai: Bai, tmp_path: Path, properties: dict[str, Any], name: str, cluster: str) -> None:
    path = write_job(tmp_path, properties, f"{name}.json")
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", cluster, "-n", name, "-f", path)


def run(
    bai: Bai, tmp_path: Path, properties: dict[str, Any], name: str = "j1", cluster: str = "gpu"
) -> dict[str, Any]:
    create(bai, tmp_path, properties, name, cluster)
    return bai.wait(name, timeout=50)


def stdouterr(bai: Bai, job: dict[str, Any]) -> Path:
    return storage_dir(bai, "acct", "file", "logs") / str(job[SEG]) / "stdouterr"


def outputs(bai: Bai, job: dict[str, Any]) -> Path:
    return storage_dir(bai, "acct", "file", "logs") / str(job[SEG]) / "outputs"


def upload_script(bai: Bai, tmp_path: Path, name: str, text: str) -> None:
    folder = tmp_path / f"upload-{name}"
    folder.mkdir()
    (folder / name).write_text(text)
    bai("storage", "file", "upload-batch", "--account", "acct", "-d", "scripts", "-s", str(folder))


def run_script(
    bai: Bai, tmp_path: Path, toolkit: str, name: str, text: str, **settings: Any
) -> dict[str, Any]:
    """Upload ``text`` as ``name`` to share ``scripts`` and run it on both nodes of cluster
    ``gpu`` with ``toolkit`` (``pyTorchSettings`` ...) and its other ``settings``; the ended job."""
    upload_script(bai, tmp_path, name, text)
    script = {"pythonScriptFilePath": f"$AZ_BATCHAI_JOB_MOUNT_ROOT/scripts/{name}", **settings}
    return run(bai, tmp_path, toolkit_job(nodeCount=2, **{toolkit: script}))


def env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


OUT = [{"id": "OUT", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs"}]


def test_one_node_job_runs_on_a_slurm_node_with_the_batch_ai_environment(
    on_slurm: Bai, tmp_path: Path
) -> None:
    bai = on_slurm
    job = run(
        bai,
        tmp_path,
        custom_job(
            "env > $AZ_BATCHAI_OUTPUT_OUT/env.txt; hostname; pwd",
            outputDirectories=OUT,
            inputDirectories=[{"id": "DATA", "path": "$AZ_BATCHAI_JOB_MOUNT_ROOT/data/x"}],
        ),
    )
    assert job["executionState"] == "succeeded", bai.why(job)
    assert job["executionInfo"]["exitCode"] == 0
    host, cwd = (stdouterr(bai, job) / "stdout.txt").read_text().split()
    assert host in NODES
    env = env_file(outputs(bai, job) / "env.txt")
    node_root = Path(env["AZ_BATCHAI_JOB_TEMP_DIR"]).parent
    # a node root per host and Slurm job, so that jobs sharing a node never collide
    assert node_root.parent == bai.home / "slurm-nodes" / host
    assert node_root.name.isdigit()
    job_temp = node_root / "jobs" / "ws" / "exp" / "j1"
    assert env["AZ_BATCHAI_MOUNT_ROOT"] == str(node_root / "mounts")
    assert env["AZ_BATCHAI_JOB_TEMP"] == cwd == str(job_temp)
    assert env["AZ_BATCHAI_INPUT_DATA"] == str(job_temp / "mounts" / "data" / "x")
    assert env["AZ_BATCHAI_STDOUTERR_DIR"] == str(stdouterr(bai, job)).replace(
        str(storage_dir(bai, "acct", "file", "logs")), str(job_temp / "mounts" / "logs")
    )
    assert env["AZ_BATCH_HOST_LIST"] == host
    assert env["SLURM_JOB_ID"] == node_root.name  # the job sees its allocation
    assert not any(k.startswith("OPENBAI_") for k in env)
    assert sorted(p.name for p in stdouterr(bai, job).iterdir()) == [
        "execution.log",
        "stderr.txt",
        "stdout.txt",
    ]
    assert not node_root.exists()  # made for this job, removed after it


def test_two_node_job_sees_the_real_hosts_on_every_node(on_slurm: Bai, tmp_path: Path) -> None:
    bai = on_slurm
    dump = "env > $AZ_BATCHAI_OUTPUT_OUT/env-$(hostname).txt"
    job = run(
        bai,
        tmp_path,
        custom_job(
            "hostname; cat $AZ_BATCHAI_MPI_HOST_FILE",
            nodeCount=2,
            outputDirectories=OUT,
            jobPreparation={"commandLine": f"{dump}; echo prepared on $(hostname)"},
        ),
    )
    assert job["executionState"] == "succeeded", bai.why(job)
    files = sorted(p.name for p in stdouterr(bai, job).iterdir())
    assert files == [
        "execution-node1.log",
        "execution-node2.log",
        "stderr-job_prep-node1.txt",
        "stderr-job_prep-node2.txt",
        "stderr.txt",
        "stdout-job_prep-node1.txt",
        "stdout-job_prep-node2.txt",
        "stdout.txt",
    ]
    for node in NODES:
        prep = (stdouterr(bai, job) / f"stdout-job_prep-{node}.txt").read_text()
        assert prep == f"prepared on {node}\n"
        env = env_file(outputs(bai, job) / f"env-{node}.txt")
        assert env["AZ_BATCH_HOST_LIST"] == "node1,node2"
        assert env["AZ_BATCH_NODE_ID"] == node
        assert env["AZ_BATCHAI_JOB_TEMP"].startswith(str(bai.home / "slurm-nodes" / node) + "/")
    # the custom toolkit runs on the first node; the host file lists both
    assert (stdouterr(bai, job) / "stdout.txt").read_text() == (
        "node1\nnode1 slots=1\nnode2 slots=1\n"
    )


TF_SCRIPT = """\
import json, os, socket, sys, time
print(json.dumps({
    "role": sys.argv[1], "host": socket.gethostname(),
    "index": os.environ["AZ_BATCHAI_TASK_INDEX"], "tf": json.loads(os.environ["TF_CONFIG"]),
    "ps": os.environ["AZ_BATCHAI_PS_HOSTS"], "workers": os.environ["AZ_BATCHAI_WORKER_HOSTS"],
}), flush=True)
ready = os.path.join(os.environ["AZ_BATCHAI_SHARED_JOB_TEMP"], "ps-ready")
if sys.argv[1] == "ps":  # a parameter server serves until the workers are done
    open(ready, "w").close()
    time.sleep(60)
while not os.path.exists(ready):  # the workers end after the parameter server reported
    time.sleep(0.05)
"""


def test_tensorflow_parameter_server_and_workers_are_laid_out_across_the_nodes(
    on_slurm: Bai, tmp_path: Path
) -> None:
    bai = on_slurm
    job = run_script(
        bai,
        tmp_path,
        "tensorFlowSettings",
        "tf.py",
        TF_SCRIPT,
        masterCommandLineArgs="master",
        workerCommandLineArgs="worker",
        parameterServerCommandLineArgs="ps",
        workerCount=2,
        parameterServerCount=1,
    )
    assert job["executionState"] == "succeeded", bai.why(job)
    out = stdouterr(bai, job)
    seen = {
        name: json.loads((out / f"stdout-{name}.txt").read_text())
        for name in ("ps-0", "wk-0", "wk-1")
    }
    cluster = {"ps": ["node1:2222"], "worker": ["node1:2223", "node2:2222"]}
    expected = {
        "ps-0": ("ps", "node1", "0", "ps"),
        "wk-0": ("master", "node1", "0", "master"),
        "wk-1": ("worker", "node2", "1", "worker"),
    }
    for name, (role, host, index, task_type) in expected.items():
        got = seen[name]
        assert (got["role"], got["host"], got["index"]) == (role, host, index), name
        assert got["tf"]["cluster"] == cluster
        assert got["tf"]["task"] == {"type": task_type, "index": int(index)}
        assert got["ps"] == "node1:2222"
        assert got["workers"] == "node1:2223,node2:2222"


TORCH_SCRIPT = """\
import os, socket, time
rank = int(os.environ["AZ_BATCHAI_TASK_INDEX"])
addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
if rank == 0:
    server = socket.create_server(("0.0.0.0", port))
    conn, _ = server.accept()
    print("rank 0 on", socket.gethostname(), "got", conn.recv(64).decode())
else:
    for _ in range(100):
        try:
            conn = socket.create_connection((addr, port), timeout=5)
            break
        except OSError:
            time.sleep(0.1)
    conn.sendall(f"hello from rank {rank} on {socket.gethostname()}".encode())
    print("rank", rank, "on", socket.gethostname(), "world", os.environ["WORLD_SIZE"])
"""


def test_pytorch_runs_one_process_per_node_and_they_meet_over_the_network(
    on_slurm: Bai, tmp_path: Path
) -> None:
    bai = on_slurm
    job = run_script(
        bai, tmp_path, "pyTorchSettings", "torch.py", TORCH_SCRIPT, communicationBackend="gloo"
    )
    assert job["executionState"] == "succeeded", bai.why(job)
    out = stdouterr(bai, job)
    assert (out / "stdout-0.txt").read_text() == (
        "rank 0 on node1 got hello from rank 1 on node2\n"
    )
    assert (out / "stdout-1.txt").read_text() == "rank 1 on node2 world 2\n"


PORT_HOLDER = """\
import os, socket, sys, time
server = socket.create_server(("0.0.0.0", int(os.environ["MASTER_PORT"])))
print(socket.gethostname(), flush=True)
for _ in range(600):  # a minute at most
    if os.path.exists(sys.argv[1]):
        break
    time.sleep(0.1)
"""


def test_jobs_on_fixed_ports_never_share_a_node(on_slurm: Bai, tmp_path: Path, gates: Path) -> None:
    """Two PyTorch jobs at once each listen on Batch AI's fixed rendezvous port: Slurm gives
    each whole nodes (--exclusive), so they run side by side on different hosts, both fine,
    where sharing a node would have made the second bind fail."""
    bai = on_slurm
    upload_script(bai, tmp_path, "hold.py", PORT_HOLDER)
    go = gates / "go"  # where a sandboxed job sees it appear
    props = toolkit_job(
        nodeCount=1,
        pyTorchSettings={
            "pythonScriptFilePath": "$AZ_BATCHAI_JOB_MOUNT_ROOT/scripts/hold.py",
            "commandLineArgs": str(go),
        },
    )
    for name in ("t1", "t2"):
        create(bai, tmp_path, props, name, "gpu")
    hosts: dict[str, str] = {}
    deadline = time.monotonic() + 50
    while len(hosts) < 2:
        assert time.monotonic() < deadline, f"both jobs should be listening; got {hosts}"
        for name in ("t1", "t2"):
            job = bai.json("job", "show", "-w", "ws", "-e", "exp", "-n", name)
            assert job["executionState"] in ("queued", "running"), job
            if job["executionState"] == "running" and SEG in job:
                printed = stdouterr(bai, job) / "stdout-0.txt"
                if printed.exists() and printed.read_text().strip():
                    hosts[name] = printed.read_text().strip()
        time.sleep(0.2)
    go.touch()
    assert sorted(hosts.values()) == NODES
    for name in ("t1", "t2"):
        assert bai.wait(name, timeout=50)["executionState"] == "succeeded"


def test_custom_mpi_ranks_span_both_nodes_with_the_job_environment(
    on_slurm: Bai, tmp_path: Path
) -> None:
    bai = on_slurm
    props = toolkit_job(
        nodeCount=2,
        customMpiSettings={
            "commandLine": "echo rank $OMPI_COMM_WORLD_RANK on $(hostname) in $AZ_BATCHAI_JOB_TEMP",
            "processCount": 3,
        },
    )
    job = run(bai, tmp_path, props)
    assert job["executionState"] == "succeeded", bai.why(job)
    lines = sorted((stdouterr(bai, job) / "stdout.txt").read_text().splitlines())
    assert [line.split(" in ")[0] for line in lines] == [
        "rank 0 on node1",
        "rank 1 on node1",
        "rank 2 on node2",
    ]
    # each rank has its own node's variables: the job's paths there, not the first node's
    temp = [line.split(" in ")[1] for line in lines]
    assert all(t.endswith("/jobs/ws/exp/j1") for t in temp)
    hosts = ["node1", "node1", "node2"]
    assert all(f"/slurm-nodes/{h}/" in t for t, h in zip(temp, hosts, strict=True)), temp


HOROVOD_SCRIPT = """\
import os, socket
print("rank", os.environ["OMPI_COMM_WORLD_RANK"], "of", os.environ["OMPI_COMM_WORLD_SIZE"],
      "on", socket.gethostname())
"""


def test_horovod_launches_python_ranks_through_mpirun_on_both_nodes(
    on_slurm: Bai, tmp_path: Path
) -> None:
    bai = on_slurm
    job = run_script(
        bai, tmp_path, "horovodSettings", "hvd.py", HOROVOD_SCRIPT, pythonInterpreterPath="python3"
    )
    assert job["executionState"] == "succeeded", bai.why(job)
    # each rank's line whole (mpirun alone forwarded chunks: 'rankrank 1 of 2 on node2')
    lines = sorted((stdouterr(bai, job) / "stdout.txt").read_text().splitlines())
    assert lines == ["rank 0 of 2 on node1", "rank 1 of 2 on node2"]
    # and no mpirun warning about -x of a variable the node does not set
    assert "Warning" not in (stdouterr(bai, job) / "stderr.txt").read_text()


def test_setup_task_runs_once_per_node_across_jobs(on_slurm: Bai, tmp_path: Path) -> None:
    bai = on_slurm
    bai(
        "cluster",
        "create",
        "-w",
        "ws",
        "-n",
        "prepared",
        "--executor",
        "slurm",
        "--partition",
        "debug",
        "--storage-account-name",
        "acct",
        "--afs-name",
        "logs",
        "--setup-task",
        "echo set up on $(hostname)",
        "--setup-task-output",
        "$AZ_BATCHAI_MOUNT_ROOT/afs/setup-logs",
    )
    for name in ("first", "second"):
        job = run(bai, tmp_path, custom_job("true", nodeCount=2), name=name, cluster="prepared")
        assert job["executionState"] == "succeeded", bai.why(job)
    logs = sorted((storage_dir(bai, "acct", "file", "logs") / "setup-logs").rglob("stdout-*.txt"))
    assert [p.name for p in logs] == ["stdout-node1.txt", "stdout-node2.txt"]
    # each node's output file is appended to: one line each, so the task ran once per node
    assert [p.read_text() for p in logs] == [f"set up on {node}\n" for node in NODES]


def test_exit_code_and_wall_clock_limit_fail_the_job(on_slurm: Bai, tmp_path: Path) -> None:
    bai = on_slurm
    create(bai, tmp_path, custom_job("echo boom >&2; exit 3"), "bad", "gpu")
    create(
        bai,
        tmp_path,
        custom_job("sleep 60", constraints={"maxWallClockTime": "PT2S"}),
        "slow",
        "gpu",
    )
    bad = bai.wait("bad", timeout=50)
    assert bad["executionState"] == "failed"
    assert bad["executionInfo"]["exitCode"] == 3
    assert bad["executionInfo"]["errors"][0]["code"] == "JobFailed"
    assert (stdouterr(bai, bad) / "stderr.txt").read_text() == "boom\n"
    slow = bai.wait("slow", timeout=50)
    assert slow["executionState"] == "failed"
    assert slow["executionInfo"]["errors"][0]["code"] == "JobWallClockTimeExceeded"


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def test_terminate_signals_the_runners_which_stop_the_job_and_keep_its_output(
    on_slurm: Bai, tmp_path: Path
) -> None:
    bai = on_slurm
    # the task's host pid reaches the test through its temp directory: no sandbox in between
    bai("cluster", "create", "-w", "ws", "-n", "open", "--executor", "slurm",
        "--partition", "debug", "--no-sandbox")  # fmt: skip
    pidfile = tmp_path / "pids"
    command = f"echo $$ >> {pidfile}; echo started; sleep 300"
    create(bai, tmp_path, custom_job(command, nodeCount=2), "long", "open")
    deadline = time.monotonic() + 30
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.1)
    bai("job", "terminate", "-w", "ws", "-e", "exp", "-n", "long", "-y")
    job = bai.wait("long", timeout=30)
    assert job["executionState"] == "failed"
    assert [e["code"] for e in job["executionInfo"]["errors"]] == ["JobTerminated"]
    assert (stdouterr(bai, job) / "stdout.txt").read_text() == "started\n"
    # the runners flushed and reported: both nodes wrote their execution log to the end
    for node in NODES:
        assert "node finished" in (stdouterr(bai, job) / f"execution-{node}.log").read_text()
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while _alive(pid):
        assert time.monotonic() < deadline, f"process {pid} of the terminated job still runs"
        time.sleep(0.1)


def test_jobs_stay_queued_while_slurm_has_no_room_and_keep_their_priority(
    on_slurm: Bai, slurm_env: SlurmCluster, tmp_path: Path
) -> None:
    bai = on_slurm
    with slurm_env.nodes_taken(60):
        for name, priority in (("low1", "low"), ("normal1", "normal"), ("high1", "high")):
            create(
                bai, tmp_path, custom_job(f"echo {name}", schedulingPriority=priority), name, "gpu"
            )
        cluster = bai.json("cluster", "show", "-w", "ws", "-n", "gpu")
        assert cluster["nodeStateCounts"]["runningNodeCount"] == 2
        assert cluster["nodeStateCounts"]["idleNodeCount"] == 0
        deadline = time.monotonic() + 20
        while True:
            queue = slurm_env.run(["squeue", "--noheader", "--format=%j|%T|%Q"]).stdout
            mine = {
                line.split("|")[0].rsplit("/", 1)[1]: (line.split("|")[1], int(line.split("|")[2]))
                for line in queue.splitlines()
                if line.startswith("ws/exp/")
            }
            if len(mine) == 3:
                break
            assert time.monotonic() < deadline, queue
            time.sleep(0.2)
        assert {state for state, _ in mine.values()} == {"PENDING"}
        assert mine["high1"][1] > mine["normal1"][1] > mine["low1"][1]
        after_dispatcher_rounds(bai)  # rounds that saw Slurm's PENDING: it stays queued
        states = {
            j["name"]: j["executionState"] for j in bai.json("job", "list", "-w", "ws", "-e", "exp")
        }
        assert states == {"low1": "queued", "normal1": "queued", "high1": "queued"}
    for name in ("low1", "normal1", "high1"):
        job = bai.wait(name, timeout=40)
        assert job["executionState"] == "succeeded", bai.why(job)
        assert (stdouterr(bai, job) / "stdout.txt").read_text() == f"{name}\n"


def test_stream_follows_a_running_slurm_job_to_its_last_byte(on_slurm: Bai, tmp_path: Path) -> None:
    bai = on_slurm
    command = "for i in $(seq 1 20); do echo line $i; sleep 0.05; done; printf 'the end'"
    create(bai, tmp_path, custom_job(command), "talk", "gpu")
    out = bai("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "talk", "-f", "stdout.txt")
    assert out.stdout == "".join(f"line {i}\n" for i in range(1, 21)) + "the end"


def test_a_job_slurm_refuses_fails_with_sbatchs_message(on_slurm: Bai, tmp_path: Path) -> None:
    bai = on_slurm
    bai(
        "cluster",
        "create",
        "-w",
        "ws",
        "-n",
        "nowhere",
        "--executor",
        "slurm",
        "--partition",
        "nope",
    )
    job = run(bai, tmp_path, custom_job("true"), cluster="nowhere")
    assert job["executionState"] == "failed"
    error = job["executionInfo"]["errors"][0]
    assert error["code"] == "SubmitError"
    assert "sbatch failed" in error["message"] and "invalid partition" in error["message"].lower()


def test_cluster_show_counts_the_partitions_nodes(on_slurm: Bai) -> None:
    counts = on_slurm.json("cluster", "show", "-w", "ws", "-n", "gpu")["nodeStateCounts"]
    assert counts["idleNodeCount"] + counts["runningNodeCount"] == 2
    assert counts["unusableNodeCount"] == counts["preparingNodeCount"] == 0


def test_secrets_and_openbai_settings_do_not_leak_into_slurm_files(
    on_slurm: Bai, tmp_path: Path
) -> None:
    bai = on_slurm
    job = run(
        bai, tmp_path, custom_job("echo ok", secrets=[{"name": "TOKEN", "value": "hunter2-xyz"}])
    )
    assert job["executionState"] == "succeeded"
    run_dir = next((bai.home / "runs").iterdir())
    for path in run_dir.iterdir():
        if path.is_file():
            assert "hunter2-xyz" not in path.read_text(errors="replace"), path
    assert not (run_dir / "plan.json").exists()  # the plan (with the secret) goes with the job
    assert os.environ.get("SLURM_CONF")

"""A job from job.json to its files: volumes, variables, output paths, stdout, exit codes."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from conftest import Bai
from job_files import upload_batch
from polling import after_dispatcher_rounds, wait_until

from .conftest import custom_job, storage_dir, write_job

SEG = "jobOutputDirectoryPathSegment"


def create(
    bai: Bai,
    tmp_path: Path,
    properties: dict[str, Any],
    name: str,
    *,
    cluster: str = "c1",
    experiment: str = "exp",
) -> None:
    """``bai job create`` of a job file with these properties, in workspace ``ws``."""
    job = write_job(tmp_path, properties, f"{name}.json")
    bai("job", "create", "-w", "ws", "-e", experiment, "-c", cluster, "-n", name, "-f", job)


def run(
    bai: Bai, tmp_path: Path, properties: dict[str, Any], name: str = "j1", cluster: str = "c1"
) -> dict[str, Any]:
    create(bai, tmp_path, properties, name, cluster=cluster)
    return bai.wait(name)


def test_job_reads_inputs_writes_outputs_and_stdout_on_the_volumes(
    recipes: Bai, tmp_path: Path
) -> None:
    bai = recipes
    dataset = tmp_path / "mnist"
    dataset.mkdir()
    for i in range(3):
        (dataset / f"{i}.txt").write_text(f"sample {i}\n")
    upload_batch(bai, dataset, "--destination-path", "mnist")
    script = tmp_path / "scripts"
    script.mkdir()
    (script / "train.py").write_text(
        "import os\n"
        "inp, out = os.environ['AZ_BATCHAI_INPUT_DATASET'], os.environ['AZ_BATCHAI_OUTPUT_MODEL']\n"
        "names = sorted(os.listdir(inp))\n"
        "print('inputs:', names)\n"
        "open(os.path.join(out, 'model.txt'), 'w').write(str(len(names)))\n"
        "import sys; print('warning', file=sys.stderr)\n"
    )
    bai("storage", "file", "upload-batch", "--account", "acct", "-d", "scripts", "-s", str(script))
    job = run(
        bai,
        tmp_path,
        custom_job(
            "python3 $AZ_BATCHAI_INPUT_SCRIPT",
            inputDirectories=[
                {"id": "DATASET", "path": "$AZ_BATCHAI_JOB_MOUNT_ROOT/data/mnist"},
                {"id": "SCRIPT", "path": "$AZ_BATCHAI_JOB_MOUNT_ROOT/scripts/train.py"},
            ],
            outputDirectories=[
                {
                    "id": "MODEL",
                    "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
                    "pathSuffix": "Models",
                }
            ],
        ),
    )
    assert job["executionState"] == "succeeded", job
    assert job["executionInfo"]["exitCode"] == 0
    segment = job[SEG]
    sub = json.loads((bai.home / "config.json").read_text())["subscriptionId"]
    assert segment.startswith(f"{sub}/default/workspaces/ws/experiments/exp/jobs/j1/")
    logs = storage_dir(bai, "acct", "file", "logs") / segment
    assert (
        logs / "stdouterr" / "stdout.txt"
    ).read_text() == "inputs: ['0.txt', '1.txt', '2.txt']\n"
    assert (logs / "stdouterr" / "stderr.txt").read_text() == "warning\n"
    assert (logs / "outputs" / "Models" / "model.txt").read_text() == "3"

    listed = bai.json("job", "file", "list", "-w", "ws", "-e", "exp", "-j", "j1")
    assert sorted(f["name"] for f in listed) == ["execution.log", "stderr.txt", "stdout.txt"]
    assert {f["fileType"] for f in listed} == {"file"}
    stdout = next(f for f in listed if f["name"] == "stdout.txt")
    assert stdout["contentLength"] == len("inputs: ['0.txt', '1.txt', '2.txt']\n")
    model = bai.json("job", "file", "list", "-w", "ws", "-e", "exp", "-j", "j1", "-d", "MODEL")
    assert [(f["name"], f["contentLength"]) for f in model] == [("model.txt", 1)]
    streamed = bai("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "j1", "-f", "stdout.txt")
    assert streamed.stdout == "inputs: ['0.txt', '1.txt', '2.txt']\n"


def test_every_batch_ai_variable_is_set(recipes: Bai, tmp_path: Path) -> None:
    bai = recipes
    job = run(
        bai,
        tmp_path,
        custom_job(
            "env > $AZ_BATCHAI_OUTPUT_ENV/env.txt; pwd > $AZ_BATCHAI_OUTPUT_ENV/pwd.txt",
            inputDirectories=[{"id": "DATA", "path": "$AZ_BATCHAI_JOB_MOUNT_ROOT/data/x"}],
            outputDirectories=[{"id": "ENV", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs"}],
            environmentVariables=[
                {"name": "MY_DIR", "value": "$AZ_BATCHAI_JOB_TEMP/mine"},
                {"name": "MY_CACHE", "value": "$HOME/.cache"},
            ],
            # a secret is given as it is: no "$" in it is expanded
            secrets=[{"name": "MY_SECRET", "value": "s3cr3t-$HOME-$$-${X}"}],
            # job preparation's ~/.bashrc edits reach the job, as the recipes rely on
            jobPreparation={"commandLine": "echo 'export FROM_BASHRC=yes' >> ~/.bashrc"},
        ),
    )
    assert job["executionState"] == "succeeded", job
    out = storage_dir(bai, "acct", "file", "logs") / job[SEG] / "outputs"
    env = dict(
        line.split("=", 1) for line in (out / "env.txt").read_text().splitlines() if "=" in line
    )
    node_root = bai.home / "nodes" / "default" / "ws" / "c1" / "0"
    job_temp = node_root / "jobs" / "ws" / "exp" / "j1"
    assert env["AZ_BATCHAI_MOUNT_ROOT"] == str(node_root / "mounts")
    assert env["AZ_BATCHAI_JOB_MOUNT_ROOT"] == str(job_temp / "mounts")
    assert env["AZ_BATCHAI_JOB_TEMP"] == str(job_temp)
    assert env["AZ_BATCHAI_JOB_TEMP_DIR"] == str(node_root / "jobs")
    assert env["AZ_BATCHAI_INPUT_DATA"] == str(job_temp / "mounts" / "data" / "x")
    assert env["AZ_BATCHAI_OUTPUT_ENV"] == f"{job_temp}/mounts/logs/{job[SEG]}/outputs"
    assert env["AZ_BATCHAI_STDOUTERR_DIR"] == f"{job_temp}/mounts/logs/{job[SEG]}/stdouterr"
    assert env["AZ_BATCHAI_MPI_HOST_FILE"] == str(job_temp / "hostfile")
    assert Path(env["AZ_BATCHAI_SHARED_JOB_TEMP"]).is_dir()
    assert env["AZ_BATCHAI_NUM_GPUS"] == "0"
    assert env["MY_DIR"] == f"{job_temp}/mine"
    assert env["MY_CACHE"] == f"{env['HOME']}/.cache"  # the job's HOME, not the runner's
    assert env["MY_SECRET"] == "s3cr3t-$HOME-$$-${X}"
    assert env["FROM_BASHRC"] == "yes"
    assert (out / "pwd.txt").read_text().strip() == str(job_temp)
    assert "127.0.0.1 slots=1" in Path(env["AZ_BATCHAI_MPI_HOST_FILE"]).read_text()


def test_secrets_are_never_shown(recipes: Bai, tmp_path: Path) -> None:
    bai = recipes
    run(
        bai,
        tmp_path,
        custom_job(
            "echo ok",
            secrets=[
                {"name": "TOKEN", "value": "hunter2-very-secret"},
                # the execution log lists AZ_BATCHAI_* variables: this one is left out whole
                {"name": "AZ_BATCHAI_STORAGE_KEY", "value": "hunter2$HOME+abc=="},
            ],
        ),
    )
    for command in (
        ("job", "show", "-w", "ws", "-e", "exp", "-n", "j1"),
        ("job", "list", "-w", "ws", "-e", "exp"),
    ):
        for fmt in ("json", "table", "tsv"):
            out = bai(*command, "-o", fmt)
            assert "hunter2-very-secret" not in out.stdout + out.stderr
    shown = bai.json("job", "show", "-w", "ws", "-e", "exp", "-n", "j1")
    assert shown["secrets"] == [{"name": "TOKEN"}, {"name": "AZ_BATCHAI_STORAGE_KEY"}]
    logs = storage_dir(bai, "acct", "file", "logs")
    for path in logs.rglob("execution.log"):
        assert "hunter2" not in path.read_text()
    assert "hunter2" not in (bai.home / "dispatcher.log").read_text(errors="replace")


def test_failing_job_records_exit_code_and_wait_exits_with_it(recipes: Bai, tmp_path: Path) -> None:
    bai = recipes
    create(bai, tmp_path, custom_job("echo boom >&2; exit 3"), "bad")
    waited = bai("job", "wait", "-w", "ws", "-e", "exp", "-n", "bad", "--interval", "0.1", expect=3)
    assert "Job failed with exit code 3" in waited.stderr
    job = bai.json("job", "show", "-w", "ws", "-e", "exp", "-n", "bad")
    assert job["executionState"] == "failed"
    assert job["executionInfo"]["exitCode"] == 3
    assert job["executionInfo"]["errors"][0]["code"] == "JobFailed"
    out = bai("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "bad", "-f", "stderr.txt")
    assert out.stdout == "boom\n"


def test_job_preparation_runs_first_and_its_failure_fails_the_job(
    recipes: Bai, tmp_path: Path
) -> None:
    bai = recipes
    ok = run(
        bai,
        tmp_path,
        custom_job(
            "cat $AZ_BATCHAI_JOB_TEMP/prepared",
            jobPreparation={
                "commandLine": "echo ready > $AZ_BATCHAI_JOB_TEMP/prepared; echo prep-out"
            },
        ),
        name="prep",
    )
    assert ok["executionState"] == "succeeded"
    files = {
        f["name"] for f in bai.json("job", "file", "list", "-w", "ws", "-e", "exp", "-j", "prep")
    }
    assert {"stdout-job_prep.txt", "stderr-job_prep.txt", "stdout.txt", "execution.log"} <= files
    out = bai("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "prep", "-f", "stdout.txt")
    assert out.stdout == "ready\n"

    bad = run(
        bai,
        tmp_path,
        custom_job("echo should-not-run", jobPreparation={"commandLine": "exit 7"}),
        name="badprep",
    )
    assert bad["executionState"] == "failed"
    assert bad["executionInfo"]["exitCode"] == 7
    assert bad["executionInfo"]["errors"][0]["code"] == "JobPreparationFailed"
    files = {
        f["name"] for f in bai.json("job", "file", "list", "-w", "ws", "-e", "exp", "-j", "badprep")
    }
    assert "stdout.txt" not in files


def test_max_wall_clock_time_is_enforced(recipes: Bai, tmp_path: Path) -> None:
    bai = recipes
    command = "echo started; sleep 60; echo finished"
    job = run(bai, tmp_path, custom_job(command, constraints={"maxWallClockTime": "PT2S"}))
    assert job["executionState"] == "failed"
    stdout = storage_dir(bai, "acct", "file", "logs") / job[SEG] / "stdouterr" / "stdout.txt"
    assert stdout.read_text() == "started\n"  # killed in its sleep
    assert job["executionInfo"]["errors"][0]["code"] == "JobWallClockTimeExceeded"


def test_terminate_kills_the_whole_process_tree_and_keeps_output(
    recipes: Bai, tmp_path: Path
) -> None:
    bai = recipes
    # the test reads the job's host pids from its own temp directory: no sandbox in between
    # (sandboxed jobs: tests/runtime/test_sandbox.py)
    bai("cluster", "create", "-w", "ws", "-n", "open", "--nodes", "1", "--no-sandbox")
    pidfile = tmp_path / "pids"
    command = (
        f"(sleep 300 & echo $! >> {pidfile}; wait) & echo $! >> {pidfile}; echo started; sleep 300"
    )
    create(bai, tmp_path, custom_job(command), "long", cluster="open")
    wait_until(lambda: pidfile.exists() and len(pidfile.read_text().split()) == 2, "both pids")
    pids = [int(p) for p in pidfile.read_text().split()]
    bai("job", "terminate", "-w", "ws", "-e", "exp", "-n", "long", "-y")
    job = bai.json("job", "show", "-w", "ws", "-e", "exp", "-n", "long")
    assert job["executionState"] == "failed"
    assert job["executionInfo"]["errors"][0]["code"] == "JobTerminated"
    for pid in pids:
        assert not _alive(pid), f"process {pid} of the terminated job still runs"
    out = bai("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "long", "-f", "stdout.txt")
    assert out.stdout == "started\n"


def test_a_job_terminated_as_it_starts_ends_terminated_not_lost(
    recipes: Bai, tmp_path: Path
) -> None:
    """The runner is asked to stop the moment the job shows running, before it has set up
    anything: it must still write the job's end (a runner killed by the signal left none,
    and the job ended ``NodeLost``)."""
    bai = recipes
    create(bai, tmp_path, custom_job("echo hi; sleep 300"), "quick")
    _wait_state(bai, "quick", "running", poll=0)
    bai("job", "terminate", "-w", "ws", "-e", "exp", "-n", "quick", "-y")
    job = bai.wait("quick")
    assert [e["code"] for e in job["executionInfo"]["errors"]] == ["JobTerminated"], bai.why(job)


def _wait_state(bai: Bai, job: str, state: str, *, poll: float = 0.05) -> None:
    def shown() -> bool:
        return bool(
            bai.json("job", "show", "-w", "ws", "-e", "exp", "-n", job)["executionState"] == state
        )

    wait_until(shown, f"{job} {state}", interval=poll)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = (
        Path(f"/proc/{pid}/stat").read_text().split()[2]
        if Path(f"/proc/{pid}/stat").exists()
        else "X"
    )
    return status not in ("Z", "X")


def test_stream_follows_a_running_job_to_its_last_byte(recipes: Bai, tmp_path: Path) -> None:
    bai = recipes
    command = (
        "for i in $(seq 1 20); do echo line $i; sleep 0.05; done; printf 'tail-without-newline'"
    )
    create(bai, tmp_path, custom_job(command), "talk")
    out = bai("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "talk", "-f", "stdout.txt")
    expected = "".join(f"line {i}\n" for i in range(1, 21)) + "tail-without-newline"
    assert out.stdout == expected


def test_delete_terminates_and_removes_the_job_but_keeps_its_files(
    recipes: Bai, tmp_path: Path
) -> None:
    bai = recipes
    create(bai, tmp_path, custom_job("echo hello; sleep 300"), "gone")
    shown = bai.json("job", "show", "-w", "ws", "-e", "exp", "-n", "gone")
    stdout = storage_dir(bai, "acct", "file", "logs") / shown[SEG] / "stdouterr" / "stdout.txt"
    wait_until(lambda: stdout.exists() and stdout.read_text(), "the job's first line")
    bai("job", "delete", "-w", "ws", "-e", "exp", "-n", "gone", "-y")
    missing = bai("job", "show", "-w", "ws", "-e", "exp", "-n", "gone", expect=3)
    assert "not found" in missing.stderr
    assert stdout.read_text() == "hello\n"


def test_jobs_queue_when_nodes_are_busy_and_priority_orders_the_queue(
    recipes: Bai, tmp_path: Path, gates: Path
) -> None:
    bai = recipes
    order = storage_dir(bai, "acct", "file", "logs") / "order.txt"
    gate = gates / "gate"
    # two blockers take both nodes until the gate file appears
    for name in ("block1", "block2"):
        create(bai, tmp_path, custom_job(f"while [ ! -e {gate} ]; do sleep 0.05; done"), name)
    _wait_state(bai, "block1", "running")
    _wait_state(bai, "block2", "running")
    for name, priority in (("low1", "low"), ("normal1", "normal"), ("high1", "high")):
        props = custom_job(
            f"echo {name} >> $AZ_BATCHAI_JOB_MOUNT_ROOT/logs/order.txt", schedulingPriority=priority
        )
        create(bai, tmp_path, props, name)
    _wait_state(bai, "block1", "running")
    _wait_state(bai, "block2", "running")
    after_dispatcher_rounds(bai)  # rounds that could have started a queued job, had they erred
    states = {
        j["name"]: j["executionState"] for j in bai.json("job", "list", "-w", "ws", "-e", "exp")
    }
    assert states == {
        "block1": "running",
        "block2": "running",
        "low1": "queued",
        "normal1": "queued",
        "high1": "queued",
    }
    cluster = bai.json("cluster", "show", "-w", "ws", "-n", "c1")
    assert cluster["nodeStateCounts"]["runningNodeCount"] == 2
    assert cluster["nodeStateCounts"]["idleNodeCount"] == 0
    # one node at a time: resize the queue's view by releasing the blockers together,
    # the three waiting jobs then start in priority order onto the two free nodes
    gate.touch()
    started = {}
    for name in ("low1", "normal1", "high1"):
        job = bai.wait(name)
        assert job["executionState"] == "succeeded"
        started[name] = job["executionInfo"]["startTime"]
    assert sorted(order.read_text().split()) == ["high1", "low1", "normal1"]
    # the order they were started in (when each writes its line depends on the machine)
    assert started["high1"] <= started["low1"] and started["normal1"] <= started["low1"]


def test_a_job_keeps_running_when_the_dispatcher_dies(
    recipes: Bai, tmp_path: Path, gates: Path
) -> None:
    """Killing the background dispatcher loses nothing: the next one adopts the job."""
    bai = recipes
    gate = gates / "gate"
    command = f"echo before; while [ ! -e {gate} ]; do sleep 0.05; done; echo after"
    create(bai, tmp_path, custom_job(command), "survivor")
    _wait_state(bai, "survivor", "running")
    shown = bai.json("job", "show", "-w", "ws", "-e", "exp", "-n", "survivor")
    stdout = storage_dir(bai, "acct", "file", "logs") / shown[SEG] / "stdouterr" / "stdout.txt"
    # "running" is recorded when the dispatcher claims the nodes, just before it starts the
    # runner (killed in between, the next dispatcher finds no runner and, after a minute,
    # fails the job with NodeLost): this test is about a job whose process runs
    wait_until(lambda: stdout.exists() and stdout.read_text() == "before\n", "job's first line")
    pid = int((bai.home / "dispatcher.lock").read_text())
    os.kill(pid, 9)
    gate.touch()
    # the job ends while no dispatcher runs
    wait_until(lambda: stdout.exists() and stdout.read_text() == "before\nafter\n", "job's end")
    # any command that may change state brings a dispatcher back; show alone must not hide the end
    bai("experiment", "create", "-w", "ws", "-n", "other")
    create(bai, tmp_path, custom_job("true"), "poke", experiment="other")
    job = bai.wait("survivor")
    assert job["executionState"] == "succeeded"
    out = bai(
        "job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "survivor", "-f", "stdout.txt"
    )
    assert out.stdout == "before\nafter\n"


def test_stream_waits_for_the_file_then_streams(recipes: Bai, tmp_path: Path, gates: Path) -> None:
    bai = recipes
    gate = gates / "gate"
    command = f"while [ ! -e {gate} ]; do sleep 0.05; done; echo late > $AZ_BATCHAI_STDOUTERR_DIR/custom.txt"
    create(bai, tmp_path, custom_job(command), "late")
    threading.Timer(1.0, gate.touch).start()
    out = bai("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "late", "-f", "custom.txt")
    assert 'The file "custom.txt" not found. Waiting for the job to generate it.' in out.stderr
    assert out.stdout == "late\n"
    missing = bai(
        "job",
        "file",
        "stream",
        "-w",
        "ws",
        "-e",
        "exp",
        "-j",
        "late",
        "-f",
        "nothing.txt",
        expect=3,
    )
    assert 'The file "nothing.txt" not found for the completed job.' in missing.stderr


def _two_node_cluster(bai: Bai) -> None:
    bai("cluster", "create", "-w", "ws", "-n", "two", "--nodes", "2", "--no-sandbox")


def _kill_runner(bai: Bai, node: int) -> float:
    """Kill the runner of node ``node`` outright (a fork server's child); when it was."""
    (runner_file,) = (bai.home / "runs").glob(f"*/node-{node}.runner")
    psutil.Process(json.loads(runner_file.read_text())[0]).kill()
    return time.monotonic()


def _lost_within(bai: Bai, job: str, killed: float, seconds: float) -> dict[str, Any]:
    """The job, ended ``failed`` with ``NodeLost`` less than ``seconds`` after ``killed``."""
    shown = bai.wait(job, timeout=60)
    assert time.monotonic() - killed < seconds
    assert shown["executionState"] == "failed", shown
    assert shown["executionInfo"]["errors"][0]["code"] == "NodeLost", shown
    return shown


def test_a_killed_runner_of_one_node_fails_a_two_node_job_within_seconds(
    recipes: Bai, tmp_path: Path
) -> None:
    """Node 1's runner killed outright while node 0's task runs: node 0 sees its heartbeat
    stop, and the job ends failed naming node 1 once node 0's task is through, not at its
    wall clock; node 0's output is all there."""
    bai = recipes
    _two_node_cluster(bai)
    lines = 6
    command = f"for i in $(seq 1 {lines}); do echo line $i; sleep 1; done"
    create(bai, tmp_path, custom_job(command, nodeCount=2), "halved", cluster="two")
    # node 1's runner is under way (nothing to run there: its tasks are done)
    wait_until(lambda: any((bai.home / "runs").glob("*/node-1.done")), "node 1's runner")
    job = _lost_within(bai, "halved", _kill_runner(bai, 1), lines + 15)
    errors = job["executionInfo"]["errors"]
    assert len(errors) == 1, errors
    assert "two-1 did not report its end: its runner is gone" in errors[0]["message"]
    stdout = storage_dir(bai, "acct", "file", "logs") / str(job[SEG]) / "stdouterr" / "stdout.txt"
    assert stdout.read_text().splitlines() == [f"line {i}" for i in range(1, lines + 1)]


def test_a_runner_killed_in_its_job_preparation_fails_the_job_within_seconds(
    recipes: Bai, tmp_path: Path
) -> None:
    """Node 1's runner killed while its job preparation runs: node 0, waiting for every
    node to be prepared, sees its heartbeat stop and fails the job naming node 1."""
    bai = recipes
    _two_node_cluster(bai)
    prep = 'if [ "$AZ_BATCH_NODE_ID" = two-1 ]; then touch $AZ_BATCHAI_JOB_TEMP/slow; sleep 300; fi'
    job_file = custom_job("echo never", nodeCount=2, jobPreparation={"commandLine": prep})
    create(bai, tmp_path, job_file, "unready", cluster="two")
    wait_until(lambda: any((bai.home / "nodes").rglob("unready/slow")), "node 1's preparation")
    job = _lost_within(bai, "unready", _kill_runner(bai, 1), 20)
    errors = job["executionInfo"]["errors"]
    assert len(errors) == 1, errors
    assert "two-1 did not report its end: its runner is gone" in errors[0]["message"]


def test_a_killed_runner_of_the_first_node_ends_the_other_nodes_soon(
    recipes: Bai, tmp_path: Path
) -> None:
    """Node 0's runner killed outright: node 1, waiting for it to say the job's work is
    over, sees its heartbeat stop and ends (the job is lost: nobody reports its end)."""
    bai = recipes
    _two_node_cluster(bai)
    create(bai, tmp_path, custom_job("exec sleep 300", nodeCount=2), "headless", cluster="two")
    wait_until(lambda: any((bai.home / "runs").glob("*/node-1.done")), "node 1's runner")
    _lost_within(bai, "headless", _kill_runner(bai, 0), 20)
    (node1_log,) = (bai.home / "runs").glob("*/node-1.log")
    assert "two-0 did not report the job's end: its runner is gone" in node1_log.read_text()


def test_a_killed_runner_fails_the_job_as_lost_and_stops_its_processes(
    recipes: Bai, tmp_path: Path
) -> None:
    bai = recipes
    bai("cluster", "create", "-w", "ws", "-n", "open", "--nodes", "1", "--no-sandbox")
    pidfile = tmp_path / "task.pid"  # the task's host pid, outside any sandbox
    create(
        bai, tmp_path, custom_job(f"echo $$ > {pidfile}; exec sleep 300"), "orphan", cluster="open"
    )
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), "the task's pid")
    task = int(pidfile.read_text())
    runner = psutil.Process(task).parent()
    (runner_file,) = (bai.home / "runs").glob("*/node-0.runner")
    assert runner is not None and runner.pid == json.loads(runner_file.read_text())[0]
    runner.kill()
    job = bai.wait("orphan")
    assert job["executionState"] == "failed"
    assert job["executionInfo"]["errors"][0]["code"] == "NodeLost"
    wait_until(lambda: not _alive(task), "end of the lost job's process", timeout=10)
    # the node is free again
    create(bai, tmp_path, custom_job("true"), "after", cluster="open")
    assert bai.wait("after")["executionState"] == "succeeded"

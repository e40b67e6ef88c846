"""Slurm going wrong under a job: the controller restarts, a node dies, a runner is killed,
someone scancels, Slurm forgets. openbai ends every such job with the right state and a
clear error, and never shows it running forever."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import pytest
from conftest import REPO, Bai
from plans import job_plan
from polling import after_dispatcher_rounds, wait_until
from workflow.conftest import custom_job, storage_dir

from openbai.errors import SubmitError
from openbai.executors import slurm
from openbai.executors.base import JobRef, RunState, SubmitRequest
from openbai.executors.slurm import SlurmExecutor
from openbai.plan.job_plan import JobPlan

from .test_slurm_jobs import SEG, create, run

if TYPE_CHECKING:
    from slurm_fixture import SlurmCluster

pytestmark = pytest.mark.slurm


def show(bai: Bai, name: str) -> dict[str, Any]:
    return dict(bai.json("job", "show", "-w", "ws", "-e", "exp", "-n", name))


def wait_running(bai: Bai, name: str) -> None:
    wait_until(lambda: show(bai, name)["executionState"] == "running", f"{name} running")


def slurm_job_id(bai: Bai, name: str) -> str:
    """The Slurm job id of an openbai job (from the comment openbai gives its Slurm jobs)."""
    run_dir = next(
        p
        for p in (bai.home / "runs").iterdir()
        if (p / "plan.json").exists() and JobPlan.read(p / "plan.json").job_name == name
    )
    out = subprocess.run(
        ["squeue", "--noheader", "--states=all", "--format=%i|%k"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return next(line.split("|")[0] for line in out.splitlines() if line.endswith(f" {run_dir}"))


class Controller:
    """Stop and start slurmctld alone (its state is saved, so it recovers its jobs)."""

    def __init__(self, cluster: SlurmCluster) -> None:
        self.cluster = cluster
        self.pid_file = cluster.state_dir / "run" / "slurmctld.pid"
        self.argv = Path(f"/proc/{self._pid()}/cmdline").read_text().split("\0")[:-1]

    def _pid(self) -> int:
        return int(self.pid_file.read_text())

    def is_up(self) -> bool:
        ping = self.cluster.run(["scontrol", "ping"], check=False, timeout=10)
        return "is UP" in ping.stdout

    def stop(self) -> None:
        pid = self._pid()
        os.kill(pid, signal.SIGTERM)
        wait_until(
            lambda: (
                not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
            ),
            "exit of slurmctld",
        )

    def start(self) -> None:
        log = open(self.cluster.state_dir / "log" / "slurmctld.out", "ab")
        proc = subprocess.Popen(
            self.argv,
            env=self.cluster.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.pid_file.write_text(f"{proc.pid}\n")
        wait_until(self.is_up, "answer from slurmctld")


@pytest.fixture
def controller(slurm_env: SlurmCluster) -> Iterator[Controller]:
    ctl = Controller(slurm_env)
    yield ctl
    if not ctl.is_up():
        ctl.start()


def test_jobs_survive_a_restart_of_the_slurm_controller(
    on_slurm: Bai, controller: Controller, tmp_path: Path, gates: Path
) -> None:
    bai = on_slurm
    # outside /tmp: a sandboxed job has a /tmp of its own
    gate_files = {name: gates / f"gate-{name}" for name in ("early", "late")}
    for name, gate in gate_files.items():
        command = f"echo before; while [ ! -e {gate} ]; do sleep 0.1; done; echo after"
        create(
            bai, tmp_path, custom_job(command, nodeCount=2 if name == "late" else 1), name, "gpu"
        )
    for name in gate_files:
        wait_running(bai, name)

    controller.stop()
    after_dispatcher_rounds(bai)  # rounds without Slurm
    assert {show(bai, n)["executionState"] for n in gate_files} == {"running"}
    # a job created meanwhile waits for Slurm instead of failing
    create(bai, tmp_path, custom_job("echo queued meanwhile"), "meanwhile", "gpu")
    # a job that ends while Slurm is away: the runners' report is the truth
    gate_files["early"].touch()
    assert bai.wait("early", timeout=20)["executionState"] == "succeeded"
    assert show(bai, "meanwhile")["executionState"] == "queued"

    controller.start()
    gate_files["late"].touch()
    for name in ("late", "meanwhile"):
        job = bai.wait(name, timeout=30)
        assert job["executionState"] == "succeeded", job
        assert job["executionInfo"]["errors"] is None or job["executionInfo"]["errors"] == []


def test_a_job_terminated_while_the_slurm_controller_is_down_stops(
    on_slurm: Bai, controller: Controller, tmp_path: Path
) -> None:
    """A terminate while slurmctld is away is taken, not refused: the runners find the stop
    request in the run directory, and the job ends terminated before Slurm is back."""
    bai = on_slurm
    create(bai, tmp_path, custom_job("echo started; sleep 300"), "stopped", "gpu")
    wait_running(bai, "stopped")
    controller.stop()
    bai("job", "terminate", "-w", "ws", "-e", "exp", "-n", "stopped", "-y", "--no-wait")
    job = bai.wait("stopped", timeout=60)
    assert [e["code"] for e in job["executionInfo"]["errors"]] == ["JobTerminated"], job
    assert not controller.is_up()


def _same_netns(pid: int) -> list[int]:
    """Processes in the network namespace of ``pid`` (one Slurm node of the test cluster)."""
    target = os.readlink(f"/proc/{pid}/ns/net")
    found = []
    for proc in psutil.process_iter(["name"]):
        try:
            if os.readlink(f"/proc/{proc.pid}/ns/net") == target and proc.info["name"] != "socat":
                found.append(proc.pid)
        except OSError:
            continue
    return found


def test_a_node_that_dies_mid_job_fails_the_job_with_slurms_reason(
    on_slurm: Bai, slurm_env: SlurmCluster, tmp_path: Path
) -> None:
    bai = on_slurm
    create(bai, tmp_path, custom_job("echo started; sleep 300", nodeCount=2), "doomed", "gpu")
    wait_running(bai, "doomed")
    slurmd = int((slurm_env.state_dir / "run" / "slurmd-node2.pid").read_text())
    try:
        # node2 dies: its slurmd, the job's runner there and everything else on it
        for pid in _same_netns(slurmd):
            os.kill(pid, signal.SIGKILL)
        job = bai.wait("doomed", timeout=50)
        assert job["executionState"] == "failed"
        errors = job["executionInfo"]["errors"]
        assert errors[0]["code"] == "NodeFailed", errors
        assert "NODE_FAIL" in errors[0]["message"]
        assert job["executionInfo"]["exitCode"] != 0
        counts = bai.json("cluster", "show", "-w", "ws", "-n", "gpu")["nodeStateCounts"]
        assert counts["unusableNodeCount"] == 1
    finally:
        restart_cluster(slurm_env)


def restart_cluster(cluster: SlurmCluster) -> None:
    """Bring the whole cluster back: the script restarts it when a part is not running (its
    munged start is occasionally refused on a quick restart: then again)."""
    script = REPO / "scripts" / "services" / "slurm.sh"
    for _ in range(3):
        done = subprocess.run(
            ["bash", str(script), "start", str(cluster.state_dir)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode == 0:
            return
    raise AssertionError(f"could not restart the Slurm cluster: {done.stderr}")


def test_a_runner_killed_outright_ends_the_job_failed(on_slurm: Bai, tmp_path: Path) -> None:
    bai = on_slurm
    create(bai, tmp_path, custom_job("echo started; sleep 300"), "killed", "gpu")
    wait_running(bai, "killed")
    runners = [
        p
        for p in psutil.process_iter(["cmdline"])
        if "openbai.runtime.runner" in " ".join(p.info["cmdline"] or [])
        and str(bai.home) in " ".join(p.info["cmdline"] or [])
    ]
    assert len(runners) == 1
    runners[0].kill()
    job = bai.wait("killed", timeout=30)
    assert job["executionState"] == "failed"
    error = job["executionInfo"]["errors"][0]
    assert error["code"] == "NodeLost"
    assert "without a node reporting" in error["message"]


def test_a_killed_runner_of_one_node_fails_a_two_node_job_within_seconds(
    on_slurm: Bai, tmp_path: Path
) -> None:
    """Node 1's runner killed outright (the OOM killer, kill -9): its Slurm step goes on
    (kill-on-bad-exit=0), but node 0 sees its heartbeat stop and ends the job failed,
    naming node 1, long before the wall clock, with all that node 0's task wrote."""
    bai = on_slurm
    lines = 8
    command = f"for i in $(seq 1 {lines}); do echo line $i; sleep 1; done"
    create(bai, tmp_path, custom_job(command, nodeCount=2), "halved", "gpu")
    wait_running(bai, "halved")
    run_dir = next(
        p
        for p in (bai.home / "runs").iterdir()
        if (p / "plan.json").exists() and JobPlan.read(p / "plan.json").job_name == "halved"
    )
    # node 1's runner is well under way (nothing to run there: its tasks are done), and has
    # said it is alive: node 0 no longer takes it for a runner merely slow to start
    wait_until(lambda: (run_dir / "node-1.done").exists(), "node 1's runner under way")
    pid, _ = json.loads((run_dir / "node-1.runner").read_text())
    runner = psutil.Process(pid)
    assert "openbai.runtime.runner" in " ".join(runner.cmdline())
    runner.kill()
    killed = time.monotonic()
    job = bai.wait("halved", timeout=60)
    took = time.monotonic() - killed
    assert job["executionState"] == "failed", job
    errors = job["executionInfo"]["errors"]
    assert [e["code"] for e in errors] == ["NodeLost"], errors
    assert "node2 did not report its end: its runner is gone" in errors[0]["message"]
    # node 0's task ran its 8 s; then 10 s without a heartbeat (and a dispatcher round)
    assert took < lines + 15, took
    stdout = storage_dir(bai, "acct", "file", "logs") / str(job[SEG]) / "stdouterr" / "stdout.txt"
    assert stdout.read_text().splitlines() == [f"line {i}" for i in range(1, lines + 1)]
    # the Slurm job ended: its nodes are free for the next job
    assert (
        run(bai, tmp_path, custom_job("echo after", nodeCount=2), "after")["executionState"]
        == "succeeded"
    )


def test_a_job_scancelled_outside_openbai_fails_with_that_reason(
    on_slurm: Bai, slurm_env: SlurmCluster, tmp_path: Path
) -> None:
    bai = on_slurm
    create(bai, tmp_path, custom_job("echo started; sleep 300", nodeCount=2), "admin", "gpu")
    wait_running(bai, "admin")
    slurm_env.run(["scancel", slurm_job_id(bai, "admin")])
    job = bai.wait("admin", timeout=30)
    assert job["executionState"] == "failed"
    codes = [e["code"] for e in job["executionInfo"]["errors"]]
    assert codes[0] == "JobCancelled", job["executionInfo"]["errors"]
    assert "JobTerminated" not in codes


def test_a_job_slurm_does_not_know_is_lost_not_running_forever(
    slurm_env: SlurmCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slurm, "RESULT_GRACE_SECONDS", 0.3)
    executor = SlurmExecutor(tmp_path)
    never_ran = tmp_path / "never-ran"
    never_ran.mkdir()
    ref = JobRef("slurm", {"run_dir": str(never_ran), "job_id": "987654321", "nodes": 1})
    status = executor.status(ref)
    assert status.state is RunState.FINISHED and status.outcome is not None
    assert status.outcome.exit_code == -1
    assert status.outcome.errors[0].code == "NodeLost"
    assert "Slurm no longer knows job 987654321" in status.outcome.errors[0].message

    started = tmp_path / "started"
    started.mkdir()
    (started / "node-0.log").write_text("a runner started here\n")
    ref = JobRef("slurm", {"run_dir": str(started), "job_id": "987654322", "nodes": 1})
    assert executor.status(ref).state is RunState.RUNNING  # its report may be on its way
    wait_until(lambda: executor.status(ref).state is RunState.FINISHED, "end of the grace")


def test_sbatch_refusing_a_job_raises_submit_error_with_its_output(
    slurm_env: SlurmCluster, tmp_path: Path
) -> None:
    executor = SlurmExecutor(tmp_path)
    plan = job_plan(std_out_err_path_prefix="/tmp")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with pytest.raises(SubmitError) as caught:
        executor.submit(SubmitRequest(run_dir, plan, cluster_options={"partition": "nope"}))
    error = caught.value
    assert error.command is not None and error.command[0] == "sbatch"
    assert "--partition=nope" in error.command
    assert error.exit_code not in (0, None)
    assert "invalid partition" in error.stderr.lower()
    assert error.stderr.strip() in error.message

"""mpirun's daemons on a job's other nodes are tasks of the job there: started by that node's
runner, in its sandbox, as the job user; never by a launcher with the runners' identity.

Two node runners of one job run here side by side, as a Slurm allocation of two hosts would
start them: the second node's host is 127.0.0.2, which OpenMPI takes for another host (it
starts a daemon there through its remote-shell agent), while the connection still reaches
this machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from plans import job_plan
from podman_fixture import Podman, podman_fixture  # noqa: F401
from polling import wait_until

from openbai.plan.job_plan import ContainerSpec, MountSpec, NodeSpec

pytestmark = pytest.mark.skipif(shutil.which("mpirun") is None, reason="needs OpenMPI")

HOSTS = ["127.0.0.1", "127.0.0.2"]


@pytest.fixture
def place() -> Iterator[Path]:
    # outside /tmp, which every sandbox replaces with its own
    path = Path(tempfile.mkdtemp(prefix="openbai-mpi-", dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def start_on_two_nodes(
    place: Path, rank_command: str, *, sandbox: bool = True, **plan_fields: Any
) -> list[subprocess.Popen[str]]:
    """Start a two-rank custom MPI job with one runner per node; the runners."""
    storage = place / "storage"
    (storage / "acct" / "file" / "logs").mkdir(parents=True)
    run_dir = place / "runs" / "r1"
    run_dir.mkdir(parents=True)
    logs = MountSpec("logs", "local", "acct", "file", "logs", options={"root": str(storage)})
    job_plan(
        tool_type="mpi",
        toolkit={"commandLine": rank_command, "processCount": 2},
        job_mounts=[logs],
        sandbox=sandbox,
        **plan_fields,
    )._replace(nodes=[NodeSpec(i, f"n{i}", host) for i, host in enumerate(HOSTS)]).write(
        run_dir / "plan.json"
    )
    return [
        subprocess.Popen(
            [sys.executable, "-m", "openbai.runtime.runner", "--run-dir", str(run_dir)]
            + ["--node", str(i), "--node-root", str(place / "nodes" / f"n{i}")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]


def run_on_two_nodes(
    place: Path, rank_command: str, *, sandbox: bool = True, **plan_fields: Any
) -> dict[str, str]:
    """Run a two-rank custom MPI job with one runner per node; its stdout and stderr."""
    runners = start_on_two_nodes(place, rank_command, sandbox=sandbox, **plan_fields)
    for runner in runners:
        out, _ = runner.communicate(timeout=120)
        assert runner.returncode == 0, out
    result = json.loads((place / "runs" / "r1" / "job.result.json").read_text())
    (folder,) = (place / "storage").glob("acct/file/logs/**/stdouterr")
    printed = {name: (folder / name).read_text() for name in ("stdout.txt", "stderr.txt")}
    assert result["exit_code"] == 0, (result, printed)
    return printed


def test_the_ranks_on_another_node_run_in_its_sandbox_as_the_job_user(place: Path) -> None:
    # a rank prints its user, how many processes it sees (its sandbox's only: bwrap's, orted
    # and its ranks, the shells) and how many entries of the run directory (the plan, the
    # nodes' MPI addresses with their tokens) it can list
    run_dir = place / "runs" / "r1"
    rank = (
        "echo rank $OMPI_COMM_WORLD_RANK uid $(id -u) sees $(ls /proc | grep -c '^[0-9]')"
        f" processes and run files: $(ls -A {run_dir} 2>/dev/null | xargs)"
    )
    printed = run_on_two_nodes(place, rank)
    lines = sorted(printed["stdout.txt"].splitlines())
    assert [line.split(" uid ")[0] for line in lines] == ["rank 0", "rank 1"], printed
    uids = {int(line.split(" uid ")[1].split()[0]) for line in lines}
    if os.getuid() == 0:
        assert len(uids) == 1 and 0 not in uids  # the job user's, on both nodes
    else:
        assert uids == {os.getuid()}
    seen = [int(line.split(" sees ")[1].split()[0]) for line in lines]
    assert max(seen) < 12, lines  # not the machine's hundreds
    # of the run directory only the folder the job shares between its nodes is in sight
    assert [line.split(" and ")[1] for line in lines] == ["run files: shared"] * 2, lines
    assert {"job.result.json", "shared"} < {p.name for p in run_dir.iterdir()}


def test_a_daemon_started_without_the_nodes_token_is_refused(place: Path) -> None:
    """What reaches a node runner's port without its token starts nothing there."""
    marker = place / "started"
    rank = (
        "if [ $OMPI_COMM_WORLD_RANK = 0 ]; then"
        ' export OPENBAI_MPI_NODES="${OPENBAI_MPI_NODES%:*}:not-the-token";'
        f" {sys.executable} -m openbai.runtime.mpi_agent 127.0.0.2 touch {marker};"
        " echo agent exited $?; fi"
    )
    printed = run_on_two_nodes(place, rank, sandbox=False)
    assert "agent exited 255" in printed["stdout.txt"], printed
    assert "closed the connection" in printed["stderr.txt"]
    assert not marker.exists()


def test_a_daemon_whose_agent_went_away_is_stopped_at_once(place: Path) -> None:
    """mpirun gone (its agent killed) while the job runs on: what it started elsewhere ends."""
    gone = place / "agent-gone"
    rank = (
        "if [ $OMPI_COMM_WORLD_RANK = 0 ]; then"
        f" {sys.executable} -m openbai.runtime.mpi_agent 127.0.0.2 sleep 47461 & agent=$!;"
        f" sleep 1; kill $agent; touch {gone}; sleep 6; fi"
    )
    runners = start_on_two_nodes(place, rank, sandbox=False)
    try:
        wait_until(gone.exists, "the agent killed", timeout=60)
        deadline = time.monotonic() + 2
        while any(p.info["cmdline"] == ["sleep", "47461"] for p in _processes()):
            assert time.monotonic() < deadline, "the daemon outlived its agent"
            time.sleep(0.05)
    finally:
        for runner in runners:
            runner.communicate(timeout=120)


def _processes() -> list[psutil.Process]:
    return list(psutil.process_iter(["cmdline"]))


@pytest.mark.parametrize("sandbox", [True, False], ids=["sealed", "no-sandbox"])
def test_the_ranks_of_a_job_in_a_container_run_in_the_container_of_their_node(
    place: Path, podman: Podman, sandbox: bool
) -> None:
    """mpirun in the image, in the first node's container, starts its daemon on the other
    host through that node's runner, in that node's container: each rank runs in the
    container its own node prepared, with its node's variables (the job user's container,
    or with --no-sandbox the image's user's)."""
    # job preparation leaves, in each node's own container, which node prepared it
    prepare = "echo $AZ_BATCHAI_JOB_TEMP > /tmp/prepared-by"
    rank = (
        "echo rank $OMPI_COMM_WORLD_RANK image $(cat /etc/openbai-test-image)"
        " prepared-by $(cat /tmp/prepared-by) temp $AZ_BATCHAI_JOB_TEMP;"
        " touch $AZ_BATCHAI_JOB_TEMP/rank-$OMPI_COMM_WORLD_RANK"
    )
    printed = run_on_two_nodes(
        place,
        rank,
        sandbox=sandbox,
        container=ContainerSpec(podman.image),
        container_runtime="podman",
        job_preparation=prepare,
    )
    lines = sorted(printed["stdout.txt"].splitlines())
    assert [line.split(" image ")[0] for line in lines] == ["rank 0", "rank 1"], printed
    fields = [line.split() for line in lines]
    assert all(f[3] == podman.image for f in fields), lines
    # each rank's container was prepared by the rank's own node, and the nodes differ
    assert [f[5] for f in fields] == [f[7] for f in fields], lines
    assert fields[0][7] != fields[1][7], lines
    # who each rank is on its node's host: the owner of what it wrote there (root inside a
    # sealed container is the job user outside)
    owners = {(Path(f[7]) / f"rank-{f[1]}").stat().st_uid for f in fields}
    if sandbox and os.getuid() == 0:
        assert len(owners) == 1 and 0 not in owners, owners  # the job user, on both nodes
    else:
        assert owners == {os.getuid()}, owners


def test_what_a_daemon_in_a_container_prints_and_its_exit_code_reach_its_agent(
    place: Path, podman: Podman
) -> None:
    """The agent, as mpirun in the image runs it, gets back what the command printed in the
    other node's container, on the stream it was printed on, and ends with its exit code."""
    agent = "python3 -c \"exec(__import__('os').environ['OPENBAI_MPI_AGENT'])\""
    remote = "'echo out-of $(cat /tmp/prepared-by); echo err-of-it >&2; exit 3'"
    rank = f"if [ $OMPI_COMM_WORLD_RANK = 0 ]; then {agent} 127.0.0.2 {remote}; echo agent exited $?; fi"
    printed = run_on_two_nodes(
        place,
        rank,
        container=ContainerSpec(podman.image),
        container_runtime="podman",
        job_preparation="echo $AZ_BATCHAI_JOB_TEMP > /tmp/prepared-by",
    )
    second = place / "nodes" / "n1" / "jobs" / "ws" / "exp" / "job"
    assert printed["stdout.txt"].splitlines() == [f"out-of {second}", "agent exited 3"], printed
    assert printed["stderr.txt"].splitlines() == ["err-of-it"], printed


def test_a_job_in_an_image_without_python3_fails_at_start_saying_so(
    place: Path, podman: Podman
) -> None:
    """The agent mpirun calls in the image runs with the image's python3: without one the
    job fails before mpirun starts, naming what to install (mpirun would only have said that
    its remote-shell agent was not found)."""
    image = podman.derived("no-python", "rm -f /usr/bin/python3* /usr/bin/python")
    runners = start_on_two_nodes(
        place, "true", container=ContainerSpec(image), container_runtime="podman"
    )
    for runner in runners:
        runner.communicate(timeout=120)
    result = json.loads((place / "runs" / "r1" / "job.result.json").read_text())
    (error, *_) = result["errors"]
    assert error["code"] == "MpiAgentNeedsPython", result
    assert "install python3 in the image" in error["message"]

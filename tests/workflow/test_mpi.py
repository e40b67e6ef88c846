"""MPI jobs through the local executor: every rank's lines reach stdout.txt whole and in order,
a clean job's stderr.txt is empty, and a node without mpirun fails the job saying why."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import psutil
import pytest
from conftest import Bai
from job_files import ALLREDUCE

from .conftest import LOGS_AND_SCRIPTS, storage_dir, write_job
from .test_toolkits import run_toolkit

LINES = 20_000

#: both ranks wait for each other, then write many lines of varied length through Python's
#: block-buffered stdout, whose 8 KiB writes end mid-line
RANK_SCRIPT = f"""\
import os, sys, time
rank = os.environ["OMPI_COMM_WORLD_RANK"]
shared = os.environ["AZ_BATCHAI_SHARED_JOB_TEMP"]
open(os.path.join(shared, "ready-" + rank), "w").close()
deadline = time.monotonic() + 30
while len([n for n in os.listdir(shared) if n.startswith("ready-")]) < 2:
    assert time.monotonic() < deadline, "the other rank did not start"
    time.sleep(0.01)
for i in range({LINES}):
    sys.stdout.write(f"rank {{rank}} line {{i}} " + "x" * (i % 97) + "\\n")
"""

LINE = re.compile(r"rank (\d) line (\d+) (x*)")


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="OpenMPI (mpirun) is not installed")
def test_ranks_printing_at_once_reach_stdout_in_whole_lines_in_order(
    recipes: Bai, tmp_path: Path
) -> None:
    # on a share the job mounts: a sandboxed job sees no host temp directory
    (storage_dir(recipes, "acct", "file", "scripts") / "ranks.py").write_text(RANK_SCRIPT)
    script = "$AZ_BATCHAI_JOB_MOUNT_ROOT/scripts/ranks.py"
    settings = {"customMpiSettings": {"commandLine": f"python3 {script}", "processCount": 2}}
    job, out = run_toolkit(recipes, tmp_path, "ranks", settings)
    assert job["executionState"] == "succeeded", job
    text = (out / "stdout.txt").read_text()
    assert text.endswith("\n")
    seen: dict[str, list[int]] = {"0": [], "1": []}
    mixed = []
    for line in text.splitlines():
        m = LINE.fullmatch(line)
        if m is None or len(m[3]) != int(m[2]) % 97:
            mixed.append(line)
        else:
            seen[m[1]].append(int(m[2]))
    assert mixed == []
    assert seen == {"0": list(range(LINES)), "1": list(range(LINES))}
    # no mpirun warnings (about -x of unset variables, or anything else) in a clean job
    assert (out / "stderr.txt").read_text() == ""


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="OpenMPI (mpirun) is not installed")
def test_rank_output_keeps_stderr_and_partial_last_lines(recipes: Bai, tmp_path: Path) -> None:
    command = (
        "printf 'out %s\\nno newline' $OMPI_COMM_WORLD_RANK; echo err $OMPI_COMM_WORLD_RANK >&2"
    )
    settings = {"customMpiSettings": {"commandLine": command, "processCount": 2}}
    job, out = run_toolkit(recipes, tmp_path, "partial", settings)
    assert job["executionState"] == "succeeded", job
    stdout = (out / "stdout.txt").read_text()
    assert sorted(re.findall(r"out \d\n", stdout)) == ["out 0\n", "out 1\n"]
    assert stdout.count("no newline") == 2 and len(stdout) == 2 * len("out 0\nno newline")
    assert sorted((out / "stderr.txt").read_text().splitlines()) == ["err 0", "err 1"]


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="OpenMPI (mpirun) is not installed")
def test_a_real_mpi_program_runs_its_ranks_of_both_nodes_together(
    recipes: Bai, tmp_path: Path
) -> None:
    """Two nodes of a local cluster, two ranks each, in one allreduce: every rank gets the sum
    over the four (the ranks start, wire up and talk inside the job's sandbox)."""
    settings = {"customMpiSettings": {"commandLine": ALLREDUCE, "processCount": 4}}
    job, out = run_toolkit(recipes, tmp_path, "allreduce", settings)
    assert job["executionState"] == "succeeded", recipes.why(job)
    lines = sorted((out / "stdout.txt").read_text().splitlines())
    assert lines == [f"allreduce {rank} 10" for rank in range(4)]


def test_mpi_job_on_a_node_without_mpirun_fails_saying_what_to_install(
    recipes: Bai, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin-without-mpi"
    bin_dir.mkdir()
    bash = shutil.which("bash")
    assert bash is not None
    os.symlink(bash, bin_dir / "bash")
    settings = {"customMpiSettings": {"commandLine": "echo never ran", "processCount": 2}}
    job, _ = run_toolkit(
        recipes,
        tmp_path,
        "nompi",
        settings,
        environmentVariables=[{"name": "PATH", "value": str(bin_dir)}],
    )
    assert job["executionState"] == "failed", job
    (error,) = job["executionInfo"]["errors"]
    assert error["code"] == "MpiNotInstalled"
    assert "mpirun" in error["message"] and "openmpi-bin" in error["message"]
    assert job["executionInfo"]["exitCode"] == 127


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="OpenMPI (mpirun) is not installed")
def test_terminated_mpi_job_stops_every_rank_and_keeps_their_lines(
    recipes: Bai, tmp_path: Path
) -> None:
    # the ranks' host pids reach the test through its temp directory: no sandbox in between
    recipes("cluster", "create", "-w", "ws", "-n", "open", "--nodes", "2", "--no-sandbox")
    pidfile = tmp_path / "pids"
    command = f"echo $$ >> {pidfile}; echo started $OMPI_COMM_WORLD_RANK; exec sleep 300"
    props = {
        "nodeCount": 2,
        "customMpiSettings": {"commandLine": command, "processCount": 2},
        "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
        "mountVolumes": LOGS_AND_SCRIPTS,
    }
    recipes(
        "job", "create", "-w", "ws", "-e", "exp", "-c", "open", "-n", "long",
        "-f", write_job(tmp_path, props),
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not (pidfile.exists() and len(pidfile.read_text().split()) == 2):
        assert time.monotonic() < deadline, "the ranks did not start"
        time.sleep(0.05)
    pids = [int(p) for p in pidfile.read_text().split()]
    recipes("job", "terminate", "-w", "ws", "-e", "exp", "-n", "long", "-y")
    job = recipes.json("job", "show", "-w", "ws", "-e", "exp", "-n", "long")
    assert job["executionState"] == "failed"
    assert job["executionInfo"]["errors"][0]["code"] == "JobTerminated"
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    out = storage_dir(recipes, "acct", "file", "logs") / job["jobOutputDirectoryPathSegment"]
    stdout = (out / "stdouterr" / "stdout.txt").read_text()
    assert sorted(stdout.splitlines()) == ["started 0", "started 1"]

"""The toolkits' command lines are pure text: checked without running anything."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from plans import job_plan

from openbai.plan.job_plan import JobPlan, NodeSpec
from openbai.runtime.toolkits import ToolkitContext, host_file_lines, plan_tasks


def plan(tool_type: str, toolkit: dict[str, Any], nodes: int = 2) -> JobPlan:
    return job_plan(nodes=nodes, tool_type=tool_type, toolkit=toolkit)


VARS = {"AZ_BATCHAI_INPUT_SCRIPT": "/mnt/s", "AZ_BATCHAI_SHARED_JOB_TEMP": "/shared"}


def ctx(p: JobPlan) -> ToolkitContext:
    return ToolkitContext(p, VARS, "/jt/hostfile", "python")


def test_tensorflow_follows_batch_ai_port_convention() -> None:
    tasks = plan_tasks(
        ctx(plan("tensorflow", {"pythonScriptFilePath": "$AZ_BATCHAI_INPUT_SCRIPT/t.py"}, nodes=3))
    )
    by_name = {t.name: t for t in tasks}
    assert sorted(by_name) == ["ps-0", "wk-0", "wk-1", "wk-2"]
    config = json.loads(by_name["ps-0"].env["TF_CONFIG"])
    # PS j listens on node j:2222; a worker on a node with a PS uses :2223, the others :2222
    assert config["cluster"] == {
        "ps": ["10.0.0.4:2222"],
        "worker": ["10.0.0.4:2223", "10.0.0.5:2222", "10.0.0.6:2222"],
    }
    assert by_name["wk-0"].command == "python /mnt/s/t.py"
    assert not by_name["ps-0"].primary and by_name["wk-2"].primary
    assert [t.node_index for t in tasks] == [0, 0, 1, 2]


def mpirun_argv(command: str, tmp_path: Path, **env: str) -> list[str]:
    """The argv that bash gives ``mpirun`` for ``command`` (a stand-in mpirun prints it)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "mpirun"
    fake.write_text('#!/bin/sh\nprintf "%s\\0" "$@"\n')
    fake.chmod(0o755)
    path = f"{bin_dir}:{os.environ['PATH']}"
    done = subprocess.run(
        ["bash", "-c", command], env={"PATH": path, **env}, capture_output=True, check=True
    )
    return done.stdout.decode().split("\0")[:-1]


def test_mpi_ranks_get_their_variables_from_their_own_node(tmp_path: Path) -> None:
    """No ``-x``: a rank inherits the job's variables from mpirun or from its node's daemon,
    each with its node's values (what ``-x`` sent was the first node's, paths included)."""
    task = plan_tasks(ctx(plan("mpi", {"commandLine": "python /mnt/s 'a b'", "processCount": 4})))
    assert [(t.name, t.mpi) for t in task] == [("", True)]
    argv = mpirun_argv(task[0].command, tmp_path, PYTHONPATH="/p", LD_LIBRARY_PATH="/l")
    assert argv == (
        "--allow-run-as-root --oversubscribe --bind-to none -np 4 --hostfile /jt/hostfile".split()
        + ["bash", "-c", "python /mnt/s 'a b'"]
    )


def test_mpi_ranks_start_through_the_relay_only_under_the_collector(tmp_path: Path) -> None:
    (task,) = plan_tasks(ctx(plan("horovod", {"pythonScriptFilePath": "x.py"})))
    assert task.mpi
    argv = mpirun_argv(
        task.command, tmp_path, OPENBAI_RANK_OUTPUT="h 1 t", OPENBAI_RANK_RELAY="/my python"
    )
    assert "OPENBAI_RANK_OUTPUT" in argv
    relay = argv.index("/my python")
    assert argv[relay:] == [
        "/my python",
        "-m",
        "openbai.runtime.rank_output",
        "relay",
        "bash",
        "-c",
        "python x.py",
    ]


def test_single_process_toolkits_run_without_mpi() -> None:
    (task,) = plan_tasks(
        ctx(plan("horovod", {"pythonScriptFilePath": "x.py", "commandLineArgs": "--lr 1"}, nodes=1))
    )
    assert (task.name, task.command) == ("", "python x.py --lr 1")
    (task,) = plan_tasks(
        ctx(
            plan(
                "cntk",
                {"configFilePath": "$AZ_BATCHAI_INPUT_SCRIPT/c.cntk", "commandLineArgs": "a=1"},
                nodes=1,
            )
        )
    )
    assert task.command == "cntk configFile=/mnt/s/c.cntk a=1"
    (task,) = plan_tasks(ctx(plan("caffe", {"configFilePath": "solver.prototxt"}, nodes=1)))
    assert task.command == "caffe train --solver=solver.prototxt"


def test_pytorch_and_caffe2_run_one_task_per_node() -> None:
    tasks = plan_tasks(
        ctx(
            plan(
                "pytorch",
                {
                    "pythonScriptFilePath": "t.py",
                    "commandLineArgs": "--rank $AZ_BATCHAI_TASK_INDEX",
                },
            )
        )
    )
    assert [(t.name, t.node_index, t.command) for t in tasks] == [
        ("0", 0, "python t.py --rank 0"),
        ("1", 1, "python t.py --rank 1"),
    ]
    assert tasks[1].env["AZ_BATCHAI_PYTORCH_INIT_METHOD"] == "file:///shared/pytorch_init"
    assert tasks[1].stdout_name == "stdout-1.txt"


def test_host_file_spreads_slots_over_hosts() -> None:
    nodes = [NodeSpec(0, "a", "h1"), NodeSpec(1, "b", "h2")]
    assert host_file_lines(nodes, 4) == ["h1 slots=2", "h2 slots=2"]
    same = [NodeSpec(0, "a", "127.0.0.1"), NodeSpec(1, "b", "127.0.0.1")]
    assert host_file_lines(same, 3) == ["127.0.0.1 slots=4"]

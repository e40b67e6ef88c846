"""What openbai gives sbatch and reads back from Slurm, as text (no cluster needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from openbai.executors.base import NodeCounts
from openbai.executors.sbatch_script import BatchJob, batch_script, sbatch_argv, time_limit
from openbai.executors.slurm import (
    SlurmJob,
    completed_state,
    count_nodes,
    node_state,
    parse_squeue,
)


def job(**overrides: object) -> BatchJob:
    values: dict[str, object] = {
        "name": "ws/exp/train",
        "run_dir": Path("/srv/bai/runs/u1"),
        "node_count": 1,
        "max_wall_clock_seconds": 3600.0,
        "python": "/opt/bai/bin/python",
        "node_roots": Path("/srv/bai/slurm-nodes"),
    }
    values.update(overrides)
    return BatchJob(**values)  # type: ignore[arg-type]


def test_sbatch_command_line_carries_the_job_settings() -> None:
    argv = sbatch_argv(
        job(node_count=2, priority="high", partition="gpu", comment="openbai /srv/bai/runs/u1")
    )
    assert argv == [
        "sbatch",
        "--parsable",
        "--job-name=ws/exp/train",
        "--nodes=2",
        "--ntasks-per-node=1",
        "--time=61",
        "--nice=0",
        "--no-requeue",
        "--chdir=/srv/bai/runs/u1",
        "--output=/srv/bai/runs/u1/slurm-%j.out",
        "--partition=gpu",
        "--comment=openbai /srv/bai/runs/u1",
        "/srv/bai/runs/u1/job.sbatch",
    ]


def test_only_jobs_on_fixed_ports_ask_for_whole_nodes() -> None:
    assert "--exclusive" in sbatch_argv(job(exclusive=True))
    assert "--exclusive" not in sbatch_argv(job())


def test_setup_runs_name_their_host_and_jobs_exclude_unusable_hosts() -> None:
    assert "--nodelist=node2" in sbatch_argv(job(nodelist=("node2",)))
    assert "--exclude=node1,node3" in sbatch_argv(job(exclude=("node1", "node3")))
    assert not any(a.startswith(("--nodelist", "--exclude")) for a in sbatch_argv(job()))


def test_no_partition_means_slurms_default() -> None:
    assert not any(a.startswith("--partition") for a in sbatch_argv(job()))


@pytest.mark.parametrize(("priority", "nice"), [("low", 200), ("normal", 100), ("high", 0)])
def test_priority_is_a_non_negative_nice(priority: str, nice: int) -> None:
    assert f"--nice={nice}" in sbatch_argv(job(priority=priority))


@pytest.mark.parametrize(
    ("seconds", "minutes"),
    [(0, "1"), (1, "2"), (60, "2"), (3600, "61"), (7 * 24 * 3600, "10081")],
)
def test_time_limit_is_the_wall_clock_plus_a_margin_in_minutes(seconds: int, minutes: str) -> None:
    assert time_limit(seconds) == minutes


def test_one_node_job_becomes_the_runner_itself() -> None:
    script = batch_script(job())
    assert script.startswith("#!/bin/bash\n")
    assert "srun" not in script
    assert script.rstrip().endswith(
        "exec /opt/bai/bin/python -m openbai.runtime.runner --run-dir /srv/bai/runs/u1"
        ' --node 0 --hosts "$SLURMD_NODENAME"'
        ' --node-root /srv/bai/slurm-nodes/"$SLURMD_NODENAME"/"$SLURM_JOB_ID"'
        ' --node-state /srv/bai/slurm-nodes/"$SLURMD_NODENAME"'
        " --keep-env SLURM_ --remove-node-root"
        ' --ports-dir /srv/bai/slurm-nodes/"$SLURMD_NODENAME"/ports'
    )


def test_multi_node_job_starts_one_runner_per_node_with_srun() -> None:
    script = batch_script(job(node_count=3))
    lines = script.splitlines()
    assert 'hosts=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | paste -sd, -)' in lines
    srun = lines[-1]
    assert srun.startswith(
        "exec srun --ntasks-per-node=1 --kill-on-bad-exit=0"
        " --output=/srv/bai/runs/u1/node-%n.out bash -c 'exec /opt/bai/bin/python"
    )
    assert srun.endswith(' runner "$hosts"')
    assert '--node "$SLURM_NODEID" --hosts "$1"' in srun


def test_paths_with_spaces_are_quoted() -> None:
    script = batch_script(job(run_dir=Path("/data/my runs/u1"), node_roots=Path("/n r")))
    assert "--run-dir '/data/my runs/u1'" in script
    assert "--node-root '/n r'/\"$SLURMD_NODENAME\"" in script


def test_squeue_lines_become_jobs() -> None:
    text = "12|RUNNING|None\n13|PENDING|Resources\n14|NODE_FAIL|NodeDown\n\n"
    assert parse_squeue(text) == {
        "12": SlurmJob("12", "RUNNING", "None"),
        "13": SlurmJob("13", "PENDING", "Resources"),
        "14": SlurmJob("14", "NODE_FAIL", "NodeDown"),
    }


@pytest.mark.parametrize(
    ("sinfo", "state"),
    [
        ("idle", "idle"),
        ("idle~", "idle"),
        ("planned", "idle"),
        ("allocated", "running"),
        ("mixed", "running"),
        ("completing", "running"),
        ("down*", "unusable"),
        ("idle*", "unusable"),
        ("drained", "unusable"),
        ("fail", "unusable"),
        ("draining", "leaving"),
        ("mixed%", "leaving"),
        ("idle#", "preparing"),
        ("unknown", "preparing"),
        ("something_new", "unusable"),
    ],
)
def test_slurm_node_states_map_to_batch_ai_states(sinfo: str, state: str) -> None:
    assert node_state(sinfo) == state


def test_nodes_in_several_partitions_count_once() -> None:
    text = "node1|idle\nnode2|mixed\nnode2|mixed\nnode3|down*\nnode4|draining\n"
    assert count_nodes(text) == NodeCounts(idle=1, running=1, unusable=1, leaving=1)


def test_final_state_of_a_forgotten_job_comes_from_the_completion_log(tmp_path: Path) -> None:
    log = tmp_path / "jobcomp.txt"
    log.write_text(
        "JobId=7 UserId=root(0) Name=a JobState=COMPLETED Partition=debug\n"
        "JobId=71 UserId=root(0) Name=b JobState=CANCELLED Partition=debug\n"
        "JobId=7 UserId=root(0) Name=a JobState=NODE_FAIL Partition=debug\n"
    )
    assert completed_state(log, "7") == "NODE_FAIL"
    assert completed_state(log, "71") == "CANCELLED"
    assert completed_state(log, "8") is None
    assert completed_state(tmp_path / "missing.txt", "7") is None

"""Fixtures for jobs on the local two-node Slurm cluster (``slurm_cluster``, tests/slurm_fixture.py).

``on_slurm``: an installation (the root ``workspace`` fixture: workspace ``ws``, experiment
``exp``, local 2-node cluster ``c1``) plus the Slurm cluster ``gpu`` on partition ``debug``
and the embedded account ``acct`` (shares ``logs`` and ``scripts``, container ``data``);
``with_cpu_cluster`` adds the Slurm cluster ``cpu`` on ``debug``, without GPUs. Slurm jobs
the test leaves behind are cancelled afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from conftest import Bai

if TYPE_CHECKING:
    from slurm_fixture import SlurmCluster


@pytest.fixture
def on_slurm(slurm_env: SlurmCluster, workspace: Bai) -> Iterator[Bai]:
    # slurm_env first: the dispatcher that the first command starts inherits SLURM_CONF
    bai = workspace
    bai("cluster", "create", "-w", "ws", "-n", "gpu", "--executor", "slurm", "--partition", "debug")
    bai("storage", "account", "create", "-n", "acct")
    for share in ("logs", "scripts"):
        bai("storage", "share", "create", "--account", "acct", "-n", share)
    bai("storage", "container", "create", "--account", "acct", "-n", "data")
    yield bai
    cancel_jobs_of(slurm_env, bai)


@pytest.fixture
def with_cpu_cluster(on_slurm: Bai) -> Bai:
    on_slurm("cluster", "create", "-w", "ws", "-n", "cpu", "--executor", "slurm",
             "--partition", "debug", "--gpus-per-node", "0")  # fmt: skip
    return on_slurm


def cancel_jobs_of(cluster: SlurmCluster, bai: Bai) -> None:
    """scancel every Slurm job this installation submitted (their comment names its runs)."""
    listed = cluster.run(["squeue", "--noheader", "--format=%i|%k"], check=False).stdout
    mine = [
        line.split("|", 1)[0]
        for line in listed.splitlines()
        if line.partition("|")[2].startswith(f"openbai {bai.home}/")
    ]
    if mine:
        cluster.run(["scancel", *mine], check=False)

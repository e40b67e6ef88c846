"""Where a job's directories are on a node, mirroring Batch AI's ``LS_root`` tree.

Batch AI nodes kept everything under ``/mnt/batch/tasks/shared/LS_root``; an openbai node
keeps it under its *node root*::

    <node root>/mounts/<relativeMountPath>         cluster volumes   ($AZ_BATCHAI_MOUNT_ROOT)
    <node root>/jobs/                              $AZ_BATCHAI_JOB_TEMP_DIR
    <node root>/jobs/<ws>/<exp>/<job>/             $AZ_BATCHAI_JOB_TEMP (wiped per run)
    <node root>/jobs/<ws>/<exp>/<job>/mounts/...   job volumes       ($AZ_BATCHAI_JOB_MOUNT_ROOT)
    <node root>/jobs/<ws>/<exp>/<job>/hostfile     $AZ_BATCHAI_MPI_HOST_FILE

The shared job temp directory (``$AZ_BATCHAI_SHARED_JOB_TEMP``) lies in the run directory,
which every node of the job sees. What must outlive a job on the node (the marker of the
cluster's setup task) lies in the *node state* directory: the node root itself on a local
slot, a per-host directory on Slurm nodes, where each job gets a node root of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from openbai.plan.job_plan import JobPlan


class NodeLayout(NamedTuple):
    node_root: Path
    run_dir: Path
    workspace: str
    experiment: str
    job_name: str
    #: where node state that outlives a job is kept; None: in the node root
    node_state: Path | None = None

    @classmethod
    def for_plan(
        cls, plan: JobPlan, node_root: Path, run_dir: Path, node_state: Path | None = None
    ) -> NodeLayout:
        return cls(node_root, run_dir, plan.workspace, plan.experiment, plan.job_name, node_state)

    @property
    def mount_root(self) -> Path:
        return self.node_root / "mounts"

    @property
    def job_temp_dir(self) -> Path:
        return self.node_root / "jobs"

    @property
    def job_temp(self) -> Path:
        return self.job_temp_dir / self.workspace / self.experiment / self.job_name

    @property
    def job_mount_root(self) -> Path:
        return self.job_temp / "mounts"

    @property
    def host_file(self) -> Path:
        return self.job_temp / "hostfile"

    @property
    def shared_job_temp(self) -> Path:
        return self.run_dir / "shared"

    @property
    def setup_marker_dir(self) -> Path:
        return setup_dir(self.node_state or self.node_root)


def setup_dir(node_state: Path) -> Path:
    """Where a node keeps the markers of the setup tasks it ran (one per cluster)."""
    return node_state / "setup"

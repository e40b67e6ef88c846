"""A node's volumes: mounted before the job (cluster volumes, then the job's), flushed and
unmounted after it, so that the job is not reported ended before its outputs are saved."""

from __future__ import annotations

from pathlib import Path

from openbai.errors import OpenBaiError
from openbai.mounts.base import Mount
from openbai.mounts.registry import mounter_for
from openbai.mounts.table import remove_tree, sync_filesystem
from openbai.plan.job_plan import MountSpec
from openbai.plan.results import JobError
from openbai.runtime.execution_log import ExecutionLog
from openbai.runtime.layout import NodeLayout
from openbai.runtime.stopping import JobFailure


def mount_all(specs: list[MountSpec], root: Path, log: ExecutionLog) -> list[Mount]:
    """Mount every volume under ``root``; on a failure, unmount those done and fail the job."""
    done = []
    for spec in specs:
        code = "BFSMountError" if spec.volume_kind == "blob" else "AZFMountError"
        target = root / spec.relative_path
        try:
            done.append(mounter_for(spec.backend).mount(spec, target, log))
        except OpenBaiError as exc:
            for mount in done:
                mount.unmount()
            raise JobFailure(
                code,
                f"Unable to mount {spec.volume_kind} volume {spec.account}/{spec.volume} at {target}: {exc.message}",
            ) from exc
    return done


def unmount_all(mounts: list[Mount], layout: NodeLayout, log: ExecutionLog) -> list[JobError]:
    """Flush the node's files to disk and unmount (last mounted first); what could not be
    saved, as the job's errors."""
    errors = []
    sync_filesystem(layout.job_temp)
    for mount in reversed(mounts):
        try:
            mount.unmount()
        except OpenBaiError as exc:
            log(f"flushing {mount.path} failed: {exc.message}")
            errors.append(
                JobError(
                    "OutputUploadFailed",
                    f"outputs written to {mount.spec.relative_path} could not be saved: {exc.message}",
                )
            )
    return errors


def remove_node_root(layout: NodeLayout, log: ExecutionLog) -> None:
    """Delete a node root made for this job alone (Slurm nodes)."""
    try:
        remove_tree(layout.node_root)
    except (OSError, OpenBaiError) as exc:
        log(f"could not remove the node root {layout.node_root}: {exc}")

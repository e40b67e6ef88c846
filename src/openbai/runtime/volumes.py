"""A node's volumes: mounted before the job (cluster volumes, then the job's), flushed and
unmounted after it, so that the job is not reported ended before its outputs are saved."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from openbai.errors import OpenBaiError
from openbai.mounts.base import Mount
from openbai.mounts.registry import mounter_for
from openbai.mounts.table import remove_tree
from openbai.plan.job_plan import MountSpec
from openbai.plan.results import JobError
from openbai.runtime.execution_log import ExecutionLog
from openbai.runtime.layout import NodeLayout
from openbai.runtime.stopping import JobFailure
from openbai.storage.atomic import sync_filesystems


def mount_all(specs: Sequence[MountSpec], root: Path, log: ExecutionLog) -> list[Mount]:
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
        if spec.read_only:
            log(f"{spec.relative_path} is read-only (mountOptions {spec.mount_options!r})")
        if spec.unapplied_options:
            log(
                f"{spec.relative_path}: mount options not applied by openbai's own clients:"
                f" {','.join(spec.unapplied_options)}"
            )
    return done


#: files named in a job's error, and faults written to its execution log, per volume
NAMED_FILES = 10
LOGGED_FAULTS = 50


def unmount_all(mounts: list[Mount], layout: NodeLayout, log: ExecutionLog) -> list[JobError]:
    """Flush the node's files to disk and unmount (last mounted first); what could not be
    saved, and what the mounts failed to write while the job ran (even if the job ignored
    it), as the job's errors."""
    errors = []
    # the job's processes are gone: one syncfs per filesystem makes what they wrote to the
    # node's temp directory and to embedded volumes durable (both usually on one)
    local = [m.local_source for m in mounts if m.local_source is not None]
    sync_filesystems([layout.job_temp, *local])
    for mount in reversed(mounts):
        try:
            mount.unmount(synced=True)
        except OpenBaiError as exc:
            log(f"flushing {mount.path} failed: {exc.message}")
            errors.append(
                JobError(
                    "OutputUploadFailed",
                    f"outputs written to {mount.spec.relative_path} could not be saved: {exc.message}",
                )
            )
        error = _faults_error(mount, log)
        if error is not None:
            errors.append(error)
    return errors


def _faults_error(mount: Mount, log: ExecutionLog) -> JobError | None:
    """Log each error the mount returned to the job; a failed write fails the job, naming
    the files (the job may have ignored the error and lost bytes of them)."""
    for fault in mount.faults[:LOGGED_FAULTS]:
        log(f"{mount.spec.relative_path}: {fault.describe()}")
    if len(mount.faults) > LOGGED_FAULTS:
        log(f"{mount.spec.relative_path}: {len(mount.faults) - LOGGED_FAULTS} more errors")
    lost = [f for f in mount.faults if f.lost_output]
    if not lost:
        return None
    files = list(dict.fromkeys(f.path for f in lost))
    named = ", ".join(files[:NAMED_FILES])
    more = f" and {len(files) - NAMED_FILES} more" if len(files) > NAMED_FILES else ""
    return JobError(
        "OutputUploadFailed",
        f"writes to {mount.spec.relative_path} failed while the job ran ({len(lost)} errors,"
        f" the first at {lost[0].when}); these files may miss data: {named}{more}",
        [{"name": f.path, "value": f.describe()} for f in lost[:NAMED_FILES]],
    )


def disk_full_error(exc: OSError, mounts: list[Mount], layout: NodeLayout) -> JobError:
    """The job's error for a full disk (``ENOSPC``) met by its runner: the file, and the
    volume it is on (or the node's own disk)."""
    path = Path(exc.filename) if exc.filename else None
    where = "the node's disk"
    for mount in mounts:
        if path is not None and path.is_relative_to(mount.path):
            spec = mount.spec
            where = f"volume {spec.account}/{spec.volume} (mounted at {spec.relative_path})"
            break
    else:
        if path is not None and path.is_relative_to(layout.node_root):
            where = f"the node's disk (node root {layout.node_root})"
    return JobError(
        "DiskFull",
        f"no space left on {where}: writing {path or 'a file'} failed ({exc.strerror or exc})",
        [{"name": "path", "value": str(path or "")}, {"name": "volume", "value": where}],
    )


def remove_node_root(layout: NodeLayout, log: ExecutionLog) -> None:
    """Delete a node root made for this job alone (Slurm nodes)."""
    try:
        remove_tree(layout.node_root)
    except (OSError, OpenBaiError) as exc:
        log(f"could not remove the node root {layout.node_root}: {exc}")

"""Records as the REST API shows them: the ARM envelope ``{id, name, type, properties}``.

The API sends these dictionaries, the web page renders them and the CLI prints them
(flattened, as az printed the SDK's models), so the three edges cannot drift apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openbai.services import ids
from openbai.services.records import (
    ClusterRecord,
    ExperimentRecord,
    FileServerRecord,
    JobRecord,
    Provisioning,
    WorkspaceRecord,
)
from openbai.settings import Settings
from openbai.spec.times import iso

if TYPE_CHECKING:  # audit loads the ORM; a CLI read shows no audit entry
    from openbai.services.audit import AuditEntry


def _provisioning(p: Provisioning) -> dict[str, Any]:
    return {
        "creationTime": iso(p.created_at),
        "provisioningState": p.state,
        "provisioningStateTransitionTime": iso(p.changed_at),
    }


def workspace_view(settings: Settings, ws: WorkspaceRecord) -> dict[str, Any]:
    return {
        "id": ids.workspace_id(settings.subscription_id, ws.resource_group, ws.name),
        "name": ws.name,
        "type": "Microsoft.BatchAI/workspaces",
        "location": ws.location,
        "tags": dict(ws.tags),
        "properties": _provisioning(ws.provisioning),
    }


def experiment_view(settings: Settings, exp: ExperimentRecord) -> dict[str, Any]:
    return {
        "id": ids.experiment_id(
            settings.subscription_id, exp.resource_group, exp.workspace, exp.name
        ),
        "name": exp.name,
        "type": "Microsoft.BatchAI/workspaces/experiments",
        "properties": _provisioning(exp.provisioning),
    }


def _with_setup_suffix(cl: ClusterRecord) -> dict[str, Any]:
    """The spec with the setup task's read-only ``stdOutErrPathSuffix``, as Batch AI showed it."""
    spec = dict(cl.spec)
    task = (spec.get("nodeSetup") or {}).get("setupTask")
    if task is not None:
        task = {**task, "stdOutErrPathSuffix": cl.setup_task_suffix}
        spec["nodeSetup"] = {**spec["nodeSetup"], "setupTask": task}
    return spec


def cluster_view(settings: Settings, cl: ClusterRecord) -> dict[str, Any]:
    n = cl.nodes
    return {
        "id": ids.cluster_id(settings.subscription_id, cl.resource_group, cl.workspace, cl.name),
        "name": cl.name,
        "type": "Microsoft.BatchAI/workspaces/clusters",
        "properties": {
            **_with_setup_suffix(cl),
            **_provisioning(cl.provisioning),
            "allocationState": cl.allocation_state,
            "allocationStateTransitionTime": iso(cl.allocation_changed_at),
            "errors": list(cl.errors) or None,
            "currentNodeCount": n.current,
            "gpuCount": cl.gpu_count,
            "nodeStateCounts": {
                "idleNodeCount": n.idle,
                "runningNodeCount": n.running,
                "preparingNodeCount": n.preparing,
                "unusableNodeCount": n.unusable,
                "leavingNodeCount": n.leaving,
            },
        },
    }


def job_view(settings: Settings, job: JobRecord) -> dict[str, Any]:
    info: dict[str, Any] | None = None
    if job.start_time is not None or job.errors:
        info = {
            "startTime": iso(job.start_time),
            "endTime": iso(job.end_time),
            "exitCode": job.exit_code,
            "errors": list(job.errors) or None,
        }
    return {
        "id": ids.job_id(
            settings.subscription_id, job.resource_group, job.workspace, job.experiment, job.name
        ),
        "name": job.name,
        "type": "Microsoft.BatchAI/workspaces/experiments/jobs",
        "properties": {
            **job.spec,
            "cluster": {"id": job.cluster_ref},
            "toolType": job.tool_type,
            "experimentName": job.experiment,
            "jobOutputDirectoryPathSegment": job.output_segment,
            "creationTime": iso(job.provisioning.created_at),
            "provisioningState": job.provisioning.state,
            "provisioningStateTransitionTime": iso(job.provisioning.changed_at),
            "executionState": job.execution_state,
            "executionStateTransitionTime": iso(job.execution_changed_at),
            "executionInfo": info,
            # openbai's: only in the answer to the create (the CLI prints them on stderr)
            **({"warnings": list(job.warnings)} if job.warnings else {}),
        },
    }


def file_server_view(settings: Settings, fs: FileServerRecord) -> dict[str, Any]:
    return {
        "id": ids.file_server_id(
            settings.subscription_id, fs.resource_group, fs.workspace, fs.name
        ),
        "name": fs.name,
        "type": "Microsoft.BatchAI/workspaces/fileServers",
        "properties": {
            **fs.spec,
            "mountSettings": fs.mount_settings,
            **_provisioning(fs.provisioning),
        },
    }


def audit_entry_view(entry: AuditEntry) -> dict[str, Any]:
    return {
        "time": iso(entry.time),
        "token": entry.token,
        "action": entry.action,
        "resource": entry.resource,
        "result": entry.result,
        "status": entry.status,
    }

"""Rows as the REST API shows them: the ARM envelope ``{id, name, type, properties}``.

The CLI prints the same dictionaries (flattened, as az printed the SDK's models), so the two
edges cannot drift apart. Nothing secret is in a view: specs are stored without secret values.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from openbai.services import ids
from openbai.settings import Settings
from openbai.store.models import Cluster, Experiment, FileServer, Job, Workspace


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def workspace_view(settings: Settings, ws: Workspace) -> dict[str, Any]:
    return {
        "id": ids.workspace_id(settings.subscription_id, ws.resource_group, ws.name),
        "name": ws.name,
        "type": "Microsoft.BatchAI/workspaces",
        "location": ws.location,
        "tags": dict(ws.tags or {}),
        "properties": {
            "creationTime": iso(ws.created_at),
            "provisioningState": ws.provisioning_state,
            "provisioningStateTransitionTime": iso(ws.provisioning_changed_at),
        },
    }


def experiment_view(settings: Settings, exp: Experiment) -> dict[str, Any]:
    ws = exp.workspace
    return {
        "id": ids.experiment_id(settings.subscription_id, ws.resource_group, ws.name, exp.name),
        "name": exp.name,
        "type": "Microsoft.BatchAI/workspaces/experiments",
        "properties": {
            "creationTime": iso(exp.created_at),
            "provisioningState": exp.provisioning_state,
            "provisioningStateTransitionTime": iso(exp.provisioning_changed_at),
        },
    }


def setup_task_suffix(settings: Settings, cl: Cluster) -> str:
    """Where under its ``stdOutErrPathPrefix`` the cluster's setup task writes its output."""
    ws = cl.workspace
    return (
        f"{settings.subscription_id}/{ws.resource_group}/workspaces/{ws.name}"
        f"/clusters/{cl.name}/{cl.uid}"
    )


def _with_setup_suffix(settings: Settings, cl: Cluster) -> dict[str, Any]:
    """The spec with the setup task's read-only ``stdOutErrPathSuffix``, as Batch AI showed it."""
    spec = dict(cl.spec)
    task = (spec.get("nodeSetup") or {}).get("setupTask")
    if task is not None:
        task = {**task, "stdOutErrPathSuffix": setup_task_suffix(settings, cl)}
        spec["nodeSetup"] = {**spec["nodeSetup"], "setupTask": task}
    return spec


def cluster_view(settings: Settings, cl: Cluster, counts: dict[str, int]) -> dict[str, Any]:
    ws = cl.workspace
    current = sum(counts.values())
    return {
        "id": ids.cluster_id(settings.subscription_id, ws.resource_group, ws.name, cl.name),
        "name": cl.name,
        "type": "Microsoft.BatchAI/workspaces/clusters",
        "properties": {
            **_with_setup_suffix(settings, cl),
            "creationTime": iso(cl.created_at),
            "provisioningState": cl.provisioning_state,
            "provisioningStateTransitionTime": iso(cl.provisioning_changed_at),
            "allocationState": cl.allocation_state,
            "allocationStateTransitionTime": iso(cl.allocation_changed_at),
            "errors": list(cl.errors or []) or None,
            "currentNodeCount": current,
            "nodeStateCounts": {
                "idleNodeCount": counts.get("idle", 0),
                "runningNodeCount": counts.get("running", 0),
                "preparingNodeCount": counts.get("preparing", 0),
                "unusableNodeCount": counts.get("unusable", 0),
                "leavingNodeCount": counts.get("leaving", 0),
            },
        },
    }


def job_view(settings: Settings, job: Job) -> dict[str, Any]:
    exp = job.experiment
    ws = exp.workspace
    info: dict[str, Any] | None = None
    if job.start_time is not None or job.errors:
        info = {
            "startTime": iso(job.start_time),
            "endTime": iso(job.end_time),
            "exitCode": job.exit_code,
            "errors": list(job.errors or []) or None,
        }
    return {
        "id": ids.job_id(settings.subscription_id, ws.resource_group, ws.name, exp.name, job.name),
        "name": job.name,
        "type": "Microsoft.BatchAI/workspaces/experiments/jobs",
        "properties": {
            **job.spec,
            "cluster": {"id": job.cluster_ref},
            "toolType": job.tool_type,
            "experimentName": exp.name,
            "jobOutputDirectoryPathSegment": job.output_segment,
            "creationTime": iso(job.created_at),
            "provisioningState": job.provisioning_state,
            "provisioningStateTransitionTime": iso(job.provisioning_changed_at),
            "executionState": job.execution_state,
            "executionStateTransitionTime": iso(job.execution_changed_at),
            "executionInfo": info,
        },
    }


def file_server_view(settings: Settings, fs: FileServer) -> dict[str, Any]:
    ws = fs.workspace
    return {
        "id": ids.file_server_id(settings.subscription_id, ws.resource_group, ws.name, fs.name),
        "name": fs.name,
        "type": "Microsoft.BatchAI/workspaces/fileServers",
        "properties": {
            **fs.spec,
            "mountSettings": None,
            "creationTime": iso(fs.created_at),
            "provisioningState": fs.provisioning_state,
            "provisioningStateTransitionTime": iso(fs.provisioning_changed_at),
        },
    }

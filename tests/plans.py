"""A job plan with the fields every plan needs, for tests that hand a runner, an executor or
the toolkits a plan without going through the server: a test names only what it is about."""

from __future__ import annotations

from typing import Any

from openbai.plan.job_plan import JobPlan, NodeSpec


def job_plan(command: str = "true", *, nodes: int = 1, **fields: Any) -> JobPlan:
    """A custom-toolkit job running ``command`` on ``nodes`` nodes (``c-0``, ``c-1``...),
    its stdout and stderr under ``$AZ_BATCHAI_JOB_MOUNT_ROOT/logs``; ``fields`` replace any
    of the plan's fields."""
    required: dict[str, Any] = dict(
        job_uid="0f6d1f3e-0000-4000-8000-000000000001",
        subscription_id="sub",
        resource_group="rg",
        workspace="ws",
        experiment="exp",
        job_name="job",
        cluster_name="c",
        cluster_uid="cu",
        output_segment="sub/rg/workspaces/ws/experiments/exp/jobs/job/u",
        tool_type="custom",
        toolkit={"commandLine": command},
        std_out_err_path_prefix="$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
        nodes=[NodeSpec(i, f"c-{i}", f"10.0.0.{4 + i}") for i in range(nodes)],
    )
    return JobPlan(**{**required, **fields})

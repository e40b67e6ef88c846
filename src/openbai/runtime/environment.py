"""The environment of a job on one node: every Batch AI variable of the reference, section 1.

Values are computed from the plan and the node's layout. Input and output paths, the stdout
prefix and user variables may themselves use ``$AZ_BATCHAI_*``: they are expanded in that
order, each against what was defined before it. Secrets are given as they are: a key with
a ``$`` in it must reach the job unchanged (and stay what the logs mask).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from openbai.plan.job_plan import JobPlan, NodeSpec
from openbai.runtime.expand import expand_path
from openbai.runtime.layout import NodeLayout
from openbai.vocabulary import output_path, stdouterr_path


class JobEnvironment(NamedTuple):
    """The variables every process of the job gets on this node, and the paths they name."""

    variables: dict[str, str]
    stdouterr_dir: str
    output_dirs: dict[str, str]


def join(prefix: str, *parts: str) -> str:
    return posixpath.join(prefix.rstrip("/") or "/", *[p.strip("/") for p in parts if p])


def node_gpus(node: NodeSpec, host_env: Mapping[str, str]) -> list[str]:
    """The node's GPUs: those openbai gave its slot, or those Slurm assigned to the step."""
    if node.gpus is not None:
        return [str(g) for g in node.gpus]
    for name in ("SLURM_STEP_GPUS", "SLURM_JOB_GPUS", "CUDA_VISIBLE_DEVICES"):
        value = host_env.get(name, "").strip()
        if value:
            return [g for g in value.split(",") if g]
    return []


def gpu_variables(
    node: NodeSpec, host_env: Mapping[str, str], visible: Sequence[int] | None
) -> dict[str, str]:
    """``AZ_BATCHAI_NUM_GPUS`` (the node's) and ``CUDA_VISIBLE_DEVICES``: ``visible``, the
    CUDA devices the node's tasks see (``sealing.cuda_devices``), in PCI bus order; where that
    is None (a scheduler named the GPUs), its value as it set it, or the GPUs it assigned."""
    gpus = node_gpus(node, host_env)
    v = {"AZ_BATCHAI_NUM_GPUS": str(len(gpus)), "AZ_BATCHAI_NUM_GPUS_PER_NODE": str(len(gpus))}
    if visible is not None:
        v["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in visible)
    elif "CUDA_VISIBLE_DEVICES" not in host_env:
        v["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
    v["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    return v


def build_environment(
    plan: JobPlan,
    node: NodeSpec,
    layout: NodeLayout,
    host_env: Mapping[str, str],
    *,
    visible_gpus: Sequence[int] | None,
) -> JobEnvironment:
    v: dict[str, str] = {
        "AZ_BATCHAI_MOUNT_ROOT": str(layout.mount_root),
        "AZ_BATCHAI_JOB_MOUNT_ROOT": str(layout.job_mount_root),
        "AZ_BATCHAI_JOB_TEMP": str(layout.job_temp),
        "AZ_BATCHAI_JOB_TEMP_DIR": str(layout.job_temp_dir),
        "AZ_BATCHAI_SHARED_JOB_TEMP": str(layout.shared_job_temp),
        "AZ_BATCHAI_MPI_HOST_FILE": str(layout.host_file),
        "AZ_BATCH_HOST_LIST": ",".join(n.host for n in plan.nodes),
        "AZ_BATCH_NODE_ID": node.node_id,
    }
    v.update(gpu_variables(node, host_env, visible_gpus))

    def expand(text: str) -> str:
        return expand_path(text, {**host_env, **v})

    stdouterr = join(expand(plan.std_out_err_path_prefix), stdouterr_path(plan.output_segment))
    v["AZ_BATCHAI_STDOUTERR_DIR"] = stdouterr
    for input_id, path in plan.input_directories.items():
        v[f"AZ_BATCHAI_INPUT_{input_id}"] = expand(path)
    outputs: dict[str, str] = {}
    for out in plan.output_directories:
        outputs[out.id] = join(
            expand(out.path_prefix), output_path(plan.output_segment, out.path_suffix)
        )
        v[f"AZ_BATCHAI_OUTPUT_{out.id}"] = outputs[out.id]
    for name, value in plan.environment.items():
        v[name] = expand(value)
    v.update(plan.secrets)
    return JobEnvironment(variables=v, stdouterr_dir=stdouterr, output_dirs=outputs)

"""The job plan: everything a node needs to run its part of a job, as plain JSON.

The server side (``scheduling/planning.py``) builds a plan from the validated job and cluster
specs and the resolved storage accounts; the node runner (``runner.py``) reads it. The plan
holds templates (``$AZ_BATCHAI_JOB_MOUNT_ROOT/logs``), not node paths: each node expands them
against its own layout. Only the standard library is imported here and in the runner, so a
node starts a job in a few tens of milliseconds.

The file holds secrets (job secrets, storage keys): it is written with mode 0600.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from openbai.files import write_private

T = TypeVar("T")


@dataclass(frozen=True)
class MountSpec:
    """One volume to make appear at ``<mount root>/<relative_path>``."""

    relative_path: str
    backend: str
    account: str
    volume_kind: str
    volume: str
    subpath: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    mount_options: str = ""


@dataclass(frozen=True)
class NodeSpec:
    index: int
    node_id: str
    host: str
    #: first of the ports the node's tasks may listen on (TensorFlow uses base and base+1)
    port_base: int = 2222
    #: the machine's GPUs this node has (NVML indices); None: its scheduler assigns them
    #: (Slurm: CUDA_VISIBLE_DEVICES / SLURM_STEP_GPUS in the step)
    gpus: list[int] | None = None


@dataclass(frozen=True)
class SetupTaskSpec:
    command_line: str
    std_out_err_path_prefix: str
    output_suffix: str
    environment: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContainerSpec:
    image: str
    server_url: str | None = None
    username: str | None = None
    password: str | None = None
    shm_size: str | None = None


@dataclass(frozen=True)
class NodeLimits:
    """What one node slot of a job may use; None: unbounded (or what a scheduler gives)."""

    cpus: float | None = None
    memory_bytes: int | None = None
    processes: int | None = None


@dataclass(frozen=True)
class OutputDirectorySpec:
    id: str
    path_prefix: str
    path_suffix: str = ""


@dataclass(frozen=True)
class JobPlan:
    job_uid: str
    subscription_id: str
    resource_group: str
    workspace: str
    experiment: str
    job_name: str
    cluster_name: str
    cluster_uid: str
    output_segment: str
    tool_type: str
    #: the toolkit's settings object as on the wire (camelCase keys)
    toolkit: dict[str, Any]
    std_out_err_path_prefix: str
    nodes: list[NodeSpec]
    cluster_mounts: list[MountSpec] = field(default_factory=list)
    job_mounts: list[MountSpec] = field(default_factory=list)
    setup_task: SetupTaskSpec | None = None
    job_preparation: str | None = None
    input_directories: dict[str, str] = field(default_factory=dict)
    output_directories: list[OutputDirectorySpec] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    max_wall_clock_seconds: float = 7 * 24 * 3600.0
    container: ContainerSpec | None = None
    container_runtime: str | None = None
    require_container: bool = False
    num_gpus: int = 0
    #: run every task in a sandbox (runtime/sandbox.py); False: the cluster's --no-sandbox
    sandbox: bool = True
    limits: NodeLimits = field(default_factory=NodeLimits)
    #: no job: the node runs the cluster's setup task (mounting the cluster's volumes) and
    #: ends, as Batch AI did when it allocated a node
    setup_only: bool = False

    @property
    def node_count(self) -> int:
        return len(self.nodes)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> JobPlan:
        raw = json.loads(text)
        return cls(
            **{
                **raw,
                "nodes": [NodeSpec(**n) for n in raw["nodes"]],
                "cluster_mounts": [MountSpec(**m) for m in raw["cluster_mounts"]],
                "job_mounts": [MountSpec(**m) for m in raw["job_mounts"]],
                "setup_task": _optional(SetupTaskSpec, raw["setup_task"]),
                "output_directories": [OutputDirectorySpec(**o) for o in raw["output_directories"]],
                "container": _optional(ContainerSpec, raw["container"]),
                "limits": _optional(NodeLimits, raw.get("limits")) or NodeLimits(),
            }
        )

    def write(self, path: Path, *, durable: bool = True) -> None:
        write_private(path, self.to_json(), durable=durable)

    @classmethod
    def read(cls, path: Path) -> JobPlan:
        return cls.from_json(path.read_text())


def _optional(cls: type[T], raw: dict[str, Any] | None) -> T | None:
    if raw is None:
        return None
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in raw.items() if k in names})

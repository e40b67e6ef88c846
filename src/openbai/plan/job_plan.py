"""The job plan: everything a node needs to run its part of a job, as plain JSON.

The server side (``scheduling/planning.py``) builds a plan from the validated job and cluster
specs and the resolved storage accounts; the node runner (``runner.py``) reads it. The plan
holds templates (``$AZ_BATCHAI_JOB_MOUNT_ROOT/logs``), not node paths: each node expands them
against its own layout. Only the standard library is imported here and in the runner, so a
node starts a job in a few tens of milliseconds; the records are named tuples, not
dataclasses, for the same reason: importing ``dataclasses`` (``inspect``, ``ast``...) and
generating the runner's classes took a third of a Slurm node runner's start (~30 ms).
Their containers default to empty immutable ones (a tuple's defaults are shared).

The file holds secrets (job secrets, storage keys): it is written with mode 0600.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

from openbai.files import write_private

T = TypeVar("T")

#: the default of a record's mapping fields
NOTHING: Mapping[str, Any] = MappingProxyType({})


class MountSpec(NamedTuple):
    """One volume to make appear at ``<mount root>/<relative_path>``."""

    relative_path: str
    backend: str
    account: str
    volume_kind: str
    volume: str
    subpath: str = ""
    options: Mapping[str, Any] = NOTHING
    #: the volume's ``mountOptions`` as the job or cluster gave them (``rw``, ``-o ro``...)
    mount_options: str = ""

    @property
    def read_only(self) -> bool:
        return asks_read_only(self.mount_options)

    @property
    def unapplied_options(self) -> list[str]:
        """Its mount options other than ro and rw: a kernel client's tuning (``hard``,
        ``attr_timeout=240``...), which openbai's own clients do not take."""
        return [w for w in mount_option_words(self.mount_options) if w not in ("ro", "rw")]


def asks_read_only(mount_options: str) -> bool:
    """Whether ``mountOptions`` ask for a read-only mount (the last of ro and rw wins)."""
    modes = [w for w in mount_option_words(mount_options) if w in ("ro", "rw")]
    return bool(modes) and modes[-1] == "ro"


def mount_option_words(text: str) -> list[str]:
    """The options of a ``mountOptions`` string, as mount(8) and blobfuse write them:
    ``ro,hard``, ``-o ro -o attr_timeout=240``."""
    words = text.replace(",", " ").split()
    return [w for w in words if w not in ("-o", "--options")]


class NodeSpec(NamedTuple):
    index: int  # type: ignore[assignment]  # shadows tuple.index(), which nothing calls
    node_id: str
    host: str
    #: first of the ports the node's tasks may listen on (TensorFlow uses base and base+1)
    port_base: int = 2222
    #: the machine's GPUs this node has (NVML indices); None: its scheduler assigns them
    #: (Slurm: CUDA_VISIBLE_DEVICES / SLURM_STEP_GPUS in the step)
    gpus: list[int] | None = None


class SetupTaskSpec(NamedTuple):
    command_line: str
    std_out_err_path_prefix: str
    output_suffix: str
    environment: Mapping[str, str] = NOTHING
    secrets: Mapping[str, str] = NOTHING


class ContainerSpec(NamedTuple):
    image: str
    server_url: str | None = None
    username: str | None = None
    password: str | None = None
    shm_size: str | None = None


class NodeLimits(NamedTuple):
    """What one node slot of a job may use; None: unbounded (or what a scheduler gives)."""

    cpus: float | None = None
    memory_bytes: int | None = None
    processes: int | None = None


class OutputDirectorySpec(NamedTuple):
    id: str
    path_prefix: str
    path_suffix: str = ""


class JobPlan(NamedTuple):
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
    toolkit: Mapping[str, Any]
    std_out_err_path_prefix: str
    nodes: Sequence[NodeSpec]
    cluster_mounts: Sequence[MountSpec] = ()
    job_mounts: Sequence[MountSpec] = ()
    setup_task: SetupTaskSpec | None = None
    job_preparation: str | None = None
    input_directories: Mapping[str, str] = NOTHING
    output_directories: Sequence[OutputDirectorySpec] = ()
    environment: Mapping[str, str] = NOTHING
    secrets: Mapping[str, str] = NOTHING
    max_wall_clock_seconds: float = 7 * 24 * 3600.0
    container: ContainerSpec | None = None
    container_runtime: str | None = None
    require_container: bool = False
    num_gpus: int = 0
    #: run every task in a sandbox (runtime/sandbox.py); False: the cluster's --no-sandbox
    sandbox: bool = True
    limits: NodeLimits = NodeLimits()
    #: the installation's trees no task may see (its home, with its keys and database),
    #: emptied in the sandbox whatever the environment the runner was started in
    private: Sequence[str] = ()
    #: no job: the node runs the cluster's setup task (mounting the cluster's volumes) and
    #: ends, as Batch AI did when it allocated a node
    setup_only: bool = False

    @property
    def node_count(self) -> int:
        return len(self.nodes)

    def to_json(self) -> str:
        return json.dumps(plain(self), indent=1, sort_keys=True)

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
    names = cls._fields  # type: ignore[attr-defined]
    return cls(**{k: v for k, v in raw.items() if k in names})


def plain(value: Any) -> Any:
    """``value`` as JSON data: records (named tuples) and mappings as objects, sequences as
    arrays (``json.dumps`` would write a named tuple as an array)."""
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {name: plain(item) for name, item in value._asdict().items()}
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value

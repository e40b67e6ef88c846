"""The cluster a user creates or resizes: ``ClusterCreateParameters`` / ``...UpdateParameters``.

The body of ``PUT``/``PATCH .../workspaces/{w}/clusters/{c}`` and the content of a
cluster.json. Differences from the 2018-05-01 swagger, because openbai runs no VMs:

* ``vmSize`` defaults to ``STANDARD_NC6`` (the CLI always filled one in); it is kept
  for display and compatibility only.
* ``userAccountSettings`` is optional (there is no node to SSH into).
* ``scaleSettings`` is optional here: Batch AI's documentation snippets leave it to the CLI
  (``-t``, ``--min/--max``). :attr:`ClusterBaseProperties.target_node_count` is 0 without it;
  the API layer decides whether to insist on it.

**openbai extension** — ``properties.openbai`` says where the cluster's jobs run::

    "openbai": {
        "executor": "local" | "slurm",          # default "local"
        "partition": "gpu",                     # Slurm partition, optional
        "requireContainers": false,             # refuse to run a job on the host
        "containerRuntime": "podman" | "docker" | "apptainer",  # optional
        "allowHostRuns": false,                 # an image job may run on the host without one
        "gpusPerNode": 1,                       # default: the vmSize's (VM_SIZE_GPUS)
        "gpus": [0, 1],                         # this machine's GPUs its slots get (filled in)
        "shareGpus": false,                     # may use GPUs that other clusters hold
        "sandbox": true,                        # false: tasks run unsealed (--no-sandbox)
        "cpusPerNode": 2, "memoryPerNode": "4G", "processesPerNode": 1024   # node limits
    }

Batch AI clients ignore the unknown key, so a cluster.json stays valid for both.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, model_validator

from openbai.spec.base import STORED, FieldError, WireModel, secret_field
from openbai.spec.common import (
    EnvironmentVariable,
    EnvironmentVariableWithSecretValue,
    KeyVaultSecretReference,
    NonEmptyStr,
    NullAsEmpty,
    PathPrefix,
    ResourceId,
    StrictInt,
    UserAccountSettings,
    check_unique_names,
    choice,
)
from openbai.spec.limits import check_process_sizes
from openbai.spec.mounts import MountVolumes

__all__ = [
    "AppInsightsReference",
    "AutoScaleSettings",
    "ClusterBaseProperties",
    "ClusterCreateParameters",
    "ClusterUpdateParameters",
    "ClusterUpdateProperties",
    "DEFAULT_VM_SIZE",
    "ImageReference",
    "ManualScaleSettings",
    "MAX_NODE_COUNT",
    "NodeSetup",
    "OpenBaiClusterSettings",
    "PerformanceCountersSettings",
    "ScaleSettings",
    "SetupTask",
    "VirtualMachineConfiguration",
    "VM_SIZE_GPUS",
    "slot_gpus",
    "vm_size_gpus",
]

DEFAULT_VM_SIZE = "STANDARD_NC6"
MAX_NODE_COUNT = 100

#: GPUs per node of Batch AI's GPU VM sizes (NC, ND, NV); every other size has none
VM_SIZE_GPUS: dict[str, int] = {
    **dict.fromkeys(["NC6", "NC6S_V2", "NC6S_V3", "ND6S", "NV6"], 1),
    **dict.fromkeys(["NC12", "NC12S_V2", "NC12S_V3", "ND12S", "NV12"], 2),
    **dict.fromkeys(
        ["NC24", "NC24R", "NC24S_V2", "NC24RS_V2", "NC24S_V3", "NC24RS_V3", "ND24S", "ND24RS"]
        + ["NV24"],
        4,
    ),
}
MAX_GPUS_PER_NODE = 64


def vm_size_gpus(vm_size: str) -> int:
    """GPUs of one node of ``vm_size`` (``STANDARD_NC12`` → 2), case as az accepted it."""
    return VM_SIZE_GPUS.get(vm_size.upper().removeprefix("STANDARD_"), 0)


NodeCount = Annotated[StrictInt, Field(ge=0, le=MAX_NODE_COUNT)]

_PARTITION = re.compile(r"[-A-Za-z0-9_.]+")


def _partition(value: str) -> str:
    if not _PARTITION.fullmatch(value):
        raise ValueError(f"{value!r} is not a Slurm partition name")
    return value


_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?", re.IGNORECASE)


def memory_bytes(value: str) -> int:
    """``4G``, ``512M``, ``1.5GiB``, ``2048`` (MiB) as bytes."""
    match = _MEMORY.fullmatch(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not an amount of memory such as 512M or 4G")
    unit = {"": 2**20, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}[match[2].upper()]
    amount = int(float(match[1]) * unit)
    if amount < 16 * 2**20:
        raise ValueError(f"{value!r} is less than 16M: no job could run in it")
    return amount


def _memory(value: str) -> str:
    memory_bytes(value)
    return value


class ManualScaleSettings(WireModel):
    """A fixed number of nodes; what happens to running jobs when it shrinks."""

    target_node_count: NodeCount = 0
    node_deallocation_option: Annotated[
        Literal["requeue", "terminate", "waitforjobcompletion"],
        choice("requeue", "terminate", "waitforjobcompletion"),
    ] = "requeue"


class AutoScaleSettings(WireModel):
    """Between ``minimumNodeCount`` and ``maximumNodeCount`` nodes, following the queue."""

    minimum_node_count: NodeCount
    maximum_node_count: NodeCount
    initial_node_count: NodeCount = 0

    @model_validator(mode="after")
    def _ordered(self) -> AutoScaleSettings:
        if self.minimum_node_count > self.maximum_node_count:
            raise FieldError(
                f"maximumNodeCount {self.maximum_node_count} is below minimumNodeCount "
                f"{self.minimum_node_count}",
                "maximumNodeCount",
            )
        if self.initial_node_count > self.maximum_node_count:
            raise FieldError(
                f"initialNodeCount {self.initial_node_count} is above maximumNodeCount "
                f"{self.maximum_node_count}",
                "initialNodeCount",
            )
        return self


class ScaleSettings(WireModel):
    """Exactly one of ``manual`` or ``autoScale``."""

    manual: ManualScaleSettings | None = None
    auto_scale: AutoScaleSettings | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ScaleSettings:
        if self.manual is not None and self.auto_scale is not None:
            raise FieldError("give manual or autoScale, not both", "autoScale")
        if self.manual is None and self.auto_scale is None:
            raise FieldError("scaleSettings needs manual or autoScale")
        return self

    @property
    def target_node_count(self) -> int:
        """The manual target, or the auto-scale maximum: how many nodes it may have."""
        if self.manual is not None:
            return self.manual.target_node_count
        assert self.auto_scale is not None, "validated: exactly one is set"
        return self.auto_scale.maximum_node_count


class ImageReference(WireModel):
    """A marketplace image (kept for display; jobs choose their own container image)."""

    publisher: NonEmptyStr
    offer: NonEmptyStr
    sku: NonEmptyStr
    version: str | None = None
    virtual_machine_image_id: str | None = None


class VirtualMachineConfiguration(WireModel):
    image_reference: ImageReference | None = None


class SetupTask(WireModel):
    """A command run on every node when it joins the cluster; must be idempotent."""

    command_line: NonEmptyStr
    environment_variables: Annotated[list[EnvironmentVariable], NullAsEmpty] = []
    secrets: Annotated[list[EnvironmentVariableWithSecretValue], NullAsEmpty] = []
    std_out_err_path_prefix: PathPrefix

    @model_validator(mode="after")
    def _unique_names(self) -> SetupTask:
        check_unique_names(
            [("environmentVariables", self.environment_variables), ("secrets", self.secrets)],
            what="environment variable name",
        )
        check_process_sizes(
            [[(("commandLine",), self.command_line)]],
            [("environmentVariables", self.environment_variables), ("secrets", self.secrets)],
        )
        return self


class AppInsightsReference(WireModel):
    component: ResourceId
    instrumentation_key: str | None = secret_field()
    instrumentation_key_secret_reference: KeyVaultSecretReference | None = None

    @model_validator(mode="after")
    def _one_key(self, info: ValidationInfo) -> AppInsightsReference:
        has_reference = self.instrumentation_key_secret_reference is not None
        if self.instrumentation_key is None and info.context == STORED:
            return self  # read back from the store, which keeps no secret value
        if (self.instrumentation_key is not None) == has_reference:
            raise FieldError(
                "give exactly one of instrumentationKey or instrumentationKeySecretReference"
            )
        return self


class PerformanceCountersSettings(WireModel):
    app_insights_reference: AppInsightsReference


class NodeSetup(WireModel):
    """What every node gets: a setup task, cluster-level mounts, performance counters."""

    setup_task: SetupTask | None = None
    mount_volumes: MountVolumes | None = None
    performance_counters_settings: PerformanceCountersSettings | None = None


class OpenBaiClusterSettings(WireModel):
    """openbai's extension (``properties.openbai``): which executor runs the jobs."""

    executor: Annotated[Literal["local", "slurm"], choice("local", "slurm")] = "local"
    partition: Annotated[str, AfterValidator(_partition)] | None = None
    require_containers: Annotated[bool, Field(strict=True)] = False
    container_runtime: Annotated[
        Literal["podman", "docker", "apptainer"] | None, choice("podman", "docker", "apptainer")
    ] = None
    allow_host_runs: Annotated[bool, Field(strict=True)] = False
    gpus_per_node: Annotated[StrictInt, Field(ge=0, le=MAX_GPUS_PER_NODE)] | None = None
    gpus: list[Annotated[StrictInt, Field(ge=0)]] | None = None
    share_gpus: Annotated[bool, Field(strict=True)] = False
    sandbox: Annotated[bool, Field(strict=True)] = True
    cpus_per_node: Annotated[float, Field(gt=0, le=4096)] | None = None
    memory_per_node: Annotated[str, AfterValidator(_memory)] | None = None
    processes_per_node: Annotated[StrictInt, Field(ge=16, le=4_194_304)] | None = None

    @model_validator(mode="after")
    def _gpus_once(self) -> OpenBaiClusterSettings:
        if self.gpus is not None and len(set(self.gpus)) != len(self.gpus):
            raise FieldError(f"gpus {self.gpus} names a GPU more than once", "gpus")
        return self


def slot_gpus(settings: OpenBaiClusterSettings, slot: int) -> list[int]:
    """The machine's GPUs that node slot ``slot`` of a local cluster gets (disjoint slices)."""
    per_node = settings.gpus_per_node or 0
    return list((settings.gpus or [])[slot * per_node : (slot + 1) * per_node])


class ClusterBaseProperties(WireModel):
    """Everything a cluster is made of (the ``properties`` of a cluster.json)."""

    vm_size: NonEmptyStr = DEFAULT_VM_SIZE
    vm_priority: Annotated[
        Literal["dedicated", "lowpriority"], choice("dedicated", "lowpriority")
    ] = "dedicated"
    scale_settings: ScaleSettings | None = None
    virtual_machine_configuration: VirtualMachineConfiguration | None = None
    node_setup: NodeSetup | None = None
    user_account_settings: UserAccountSettings | None = None
    subnet: ResourceId | None = None
    openbai: OpenBaiClusterSettings = Field(default_factory=OpenBaiClusterSettings)

    @property
    def target_node_count(self) -> int:
        """Manual target or auto-scale maximum; 0 when no scale settings were given."""
        return 0 if self.scale_settings is None else self.scale_settings.target_node_count


class ClusterCreateParameters(WireModel):
    """The whole cluster.json / PUT body: ``{"properties": {...}}``."""

    legacy_keys = frozenset({"location", "tags"})  # 2017-09-01-preview's ARM envelope

    properties: ClusterBaseProperties


class ClusterUpdateProperties(WireModel):
    """What PATCH may change: only the scale settings (absent = no change)."""

    scale_settings: ScaleSettings | None = None


class ClusterUpdateParameters(WireModel):
    """The PATCH body: ``{"properties": {"scaleSettings": {...}}}``."""

    properties: ClusterUpdateProperties = Field(default_factory=ClusterUpdateProperties)

"""From a stored job and its cluster to the plan its nodes run (plan/job_plan.py).

What a plan takes from the cluster (its parsed spec, its volumes, its setup task) is worked
out once per cluster in a :class:`ClusterPlanning` and shared by every job that starts on it
in the same dispatcher round: resolving a volume may ask a storage service whether it exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from openbai.errors import OpenBaiError
from openbai.installation import App
from openbai.plan.job_plan import (
    ContainerSpec,
    JobPlan,
    MountSpec,
    NodeLimits,
    NodeSpec,
    OutputDirectorySpec,
    SetupTaskSpec,
)
from openbai.runtime.containers import NO_RUNTIME
from openbai.scheduling.locations import setup_task_suffix
from openbai.scheduling.volumes import mount_specs, mounted_volumes
from openbai.spec import ClusterBaseProperties
from openbai.spec.cluster import OpenBaiClusterSettings, memory_bytes, slot_gpus
from openbai.store.models import Cluster, Job
from openbai.store.specs import cluster_properties, job_properties


def cluster_limits(settings: OpenBaiClusterSettings) -> NodeLimits:
    """A node's limits as its cluster sets them (the executor fills in what it leaves open)."""
    memory = settings.memory_per_node
    return NodeLimits(
        cpus=settings.cpus_per_node,
        memory_bytes=memory_bytes(memory) if memory else None,
        processes=settings.processes_per_node,
    )


def cluster_key(cluster: Cluster) -> str:
    ws = cluster.workspace
    return f"{ws.resource_group}/{ws.name}/{cluster.name}"


@dataclass
class ClusterPlanning:
    """The cluster's share of its jobs' plans; load it with the cluster's workspace."""

    name: str
    uid: str
    key: str
    properties: ClusterBaseProperties
    setup_task: SetupTaskSpec | None
    #: the cluster's volumes, or why they cannot be mounted (every job of the round fails)
    mounts: list[MountSpec] | OpenBaiError

    @classmethod
    def of(cls, app: App, cluster: Cluster) -> ClusterPlanning:
        props = cluster_properties(cluster)
        volumes = props.node_setup.mount_volumes if props.node_setup else None
        mounts: list[MountSpec] | OpenBaiError
        try:
            resolved = mounted_volumes(
                volumes, root="AZ_BATCHAI_MOUNT_ROOT", field="cluster.nodeSetup.mountVolumes"
            )
            mounts = mount_specs(app, resolved)
        except OpenBaiError as exc:
            mounts = exc
        setup = None
        if props.node_setup and props.node_setup.setup_task:
            task = props.node_setup.setup_task
            ws = cluster.workspace
            setup = SetupTaskSpec(
                command_line=task.command_line,
                std_out_err_path_prefix=task.std_out_err_path_prefix,
                output_suffix=setup_task_suffix(
                    app.settings.subscription_id,
                    ws.resource_group,
                    ws.name,
                    cluster.name,
                    cluster.uid,
                ),
                environment={e.name: e.value for e in task.environment_variables},
                secrets={k: str(v) for k, v in (cluster.secrets or {}).items()},
            )
        return cls(cluster.name, cluster.uid, cluster_key(cluster), props, setup, mounts)


def build_plan(app: App, job: Job, cluster: ClusterPlanning, nodes: list[NodeSpec]) -> JobPlan:
    """The job's plan; load the job with its experiment and workspace."""
    if isinstance(cluster.mounts, OpenBaiError):
        raise cluster.mounts
    props = job_properties(job)
    cprops = cluster.properties
    exp = job.experiment
    ws = exp.workspace
    job_mounts = mounted_volumes(
        props.mount_volumes, root="AZ_BATCHAI_JOB_MOUNT_ROOT", field="properties.mountVolumes"
    )
    container = None
    if props.container_settings is not None:
        registry = props.container_settings.image_source_registry
        creds = registry.credentials
        container = ContainerSpec(
            image=registry.image,
            server_url=registry.server_url,
            username=creds.username if creds else None,
            password=creds.password if creds else None,
            shm_size=props.container_settings.shm_size,
        )
    runtime = cprops.openbai.container_runtime or app.settings.container_runtime
    host_runs = cprops.openbai.allow_host_runs or runtime == NO_RUNTIME
    return JobPlan(
        job_uid=job.uid,
        subscription_id=app.settings.subscription_id,
        resource_group=ws.resource_group,
        workspace=ws.name,
        experiment=exp.name,
        job_name=job.name,
        cluster_name=cluster.name,
        cluster_uid=cluster.uid,
        output_segment=job.output_segment,
        tool_type=props.tool_type,
        toolkit=props.toolkit.to_wire(),
        std_out_err_path_prefix=props.std_out_err_path_prefix,
        nodes=nodes,
        cluster_mounts=cluster.mounts,
        job_mounts=mount_specs(app, job_mounts),
        setup_task=cluster.setup_task,
        job_preparation=props.job_preparation.command_line if props.job_preparation else None,
        input_directories={d.id: d.path for d in props.input_directories},
        output_directories=[
            OutputDirectorySpec(o.id, o.path_prefix, o.path_suffix or "")
            for o in props.output_directories
        ],
        environment={e.name: e.value for e in props.environment_variables},
        secrets={e.name: e.value for e in props.secrets if e.value is not None},
        max_wall_clock_seconds=props.constraints.max_wall_clock_time.total_seconds(),
        container=container,
        container_runtime=runtime,
        require_container=cprops.openbai.require_containers or not host_runs,
        num_gpus=cprops.openbai.gpus_per_node or 0,
    )


def with_slot_gpus(
    props: ClusterBaseProperties, nodes: list[NodeSpec], slots: list[int]
) -> list[NodeSpec]:
    """The nodes with their slots' GPUs; a queueing executor's (no slots) learn theirs when
    they run."""
    if not slots:
        return nodes
    return [
        n._replace(gpus=slot_gpus(props.openbai, slot))
        for n, slot in zip(nodes, slots, strict=True)
    ]

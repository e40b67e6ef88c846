"""The job's container on one node: started from the job's image with the directories the
job needs bound at the host's paths, or the job runs on the host when no container runtime
is available (unless the cluster requires containers)."""

from __future__ import annotations

import os
from pathlib import Path

from openbai.runtime import containers, job_container
from openbai.runtime.environment import JobEnvironment
from openbai.runtime.stopping import JobFailure
from openbai.runtime.tasks import NodeTasks


def start_container(tasks: NodeTasks, env: JobEnvironment) -> None:
    """Start the job's container, if it has one, for ``tasks`` to run in."""
    ctx = tasks.ctx
    spec = ctx.plan.container
    if spec is None:
        return
    runtime = containers.find_runtime(ctx.plan.container_runtime)
    if runtime is None:
        looked = ctx.plan.container_runtime or ", ".join(containers.RUNTIMES)
        if ctx.plan.require_container:
            raise JobFailure(
                "FailedStartingContainer",
                f"no container runtime ({looked}) is installed on this node for image {spec.image}",
            )
        ctx.log(
            f"containerSettings asks for image {spec.image}; no container runtime ({looked}) is used, so the job runs on the host, as its cluster (allowHostRuns) or the installation (OPENBAI_CONTAINER_RUNTIME=none) allows"
        )
        return
    image = containers.image_name(spec)
    name = f"openbai-{ctx.plan.job_uid[:12]}-{ctx.node.index}-{os.getpid()}"
    try:
        ctx.log(f"checking image {image} with {runtime}")
        auth = ctx.layout.run_dir / f"registry-auth-{ctx.node.index}"
        if job_container.prepare_image(runtime, spec, auth, tasks.should_stop, progress=ctx.log):
            ctx.log(f"pulled image {image}")
        ctx.log(f"starting container {name} from image {image} with {runtime}")
        log = ctx.layout.run_dir / f"node-{ctx.node.index}.container.log"
        tasks.container = job_container.start(
            runtime, spec, name, _binds(tasks, env), log, gpus=ctx.node.gpus or ()
        )
    except job_container.ContainerError as exc:
        if tasks.should_stop():
            raise tasks.stopping.reason() from exc
        raise JobFailure(
            "FailedStartingContainer",
            f"Unable to start the job's container: {exc.message}",
            imageName=image,
            Info=exc.info or exc.message,
        ) from exc
    if ctx.node.gpus is not None:
        # the container sees only the node's GPUs, numbered from 0; NVIDIA's runtime hooks
        # read the host's indices
        count = len(ctx.node.gpus)
        env.variables["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(count))
        env.variables["NVIDIA_VISIBLE_DEVICES"] = (
            ",".join(str(g) for g in ctx.node.gpus) if count else "void"
        )
    tasks.container_env = set(env.variables)
    ctx.log(f"job preparation and the job run in container {name} (image {image}, {runtime})")


def _binds(tasks: NodeTasks, env: JobEnvironment) -> list[Path]:
    """What the container sees at the host's paths: the node root (job tree and volumes),
    the shared job temp, the directories embedded volumes link to, the output folders."""
    layout, plan = tasks.ctx.layout, tasks.ctx.plan
    links = [
        root / m.relative_path
        for root, specs in (
            (layout.mount_root, plan.cluster_mounts),
            (layout.job_mount_root, plan.job_mounts),
        )
        for m in specs
    ]
    targets = [link.parent / os.readlink(link) for link in links if link.is_symlink()]
    return [
        layout.node_root,
        layout.shared_job_temp,
        *targets,
        Path(env.stdouterr_dir),
        *[Path(p) for p in env.output_dirs.values()],
    ]


def remove_container(tasks: NodeTasks) -> None:
    if tasks.container is not None:
        tasks.container.remove()
        tasks.ctx.log(f"removed container {tasks.container.name}")
        tasks.container = None

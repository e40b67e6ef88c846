"""The job's container on one node: started from the job's image with the directories the
job needs bound at the host's paths, sealed off as the node's host tasks are (the job user,
the slot's limits), or the job runs on the host when no container runtime is available
(unless the cluster requires containers)."""

from __future__ import annotations

import os
from pathlib import Path

from openbai.mounts.link import Anchor
from openbai.runtime import bind_check, containers, job_container
from openbai.runtime.environment import JobEnvironment
from openbai.runtime.layout import NodeLayout
from openbai.runtime.sealing import host_gpus, node_limits, read_only_paths
from openbai.runtime.stopping import JobFailure
from openbai.runtime.tasks import NodeTasks


def start_container(tasks: NodeTasks, env: JobEnvironment) -> None:
    """Start the job's container (the job has one) for ``tasks`` to run in."""
    ctx = tasks.ctx
    spec = ctx.plan.container
    assert spec is not None
    gpus = host_gpus(ctx)  # on Slurm, those it assigned: a container gets no GPU not named
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
    seal = _seal(tasks)
    if seal.user is not None:
        env.variables["HOME"] = str(seal.user.home)  # the job user's, as on the host
    log = ctx.layout.run_dir / f"node-{ctx.node.index}.container.log"
    control = None
    if runtime != containers.APPTAINER:
        # the FIFOs of the tasks' exit codes: bound in, listed by no one but the runner
        control = ctx.layout.run_dir / f"node-{ctx.node.index}.exit-codes"
        control.mkdir(mode=0o711, exist_ok=True)
        control.chmod(0o711)
    binds = _binds(tasks, env) + ([control] if control is not None else [])
    read_only = _read_only(tasks)

    def start() -> job_container.JobContainer:
        ctx.log(f"starting container {name} from image {image} with {runtime}")
        # the runtime binds by path, following links: the folders are held from before it
        # starts and found again in the container before any task runs (bind_check.py)
        with bind_check.expect(binds, _anchors(tasks), read_only) as expected:
            container = job_container.start(
                runtime,
                spec,
                name,
                binds,
                log,
                gpus=gpus or (),
                seal=seal,
                cidfile=ctx.layout.run_dir / f"node-{ctx.node.index}.cid",
                control=control,
                read_only=read_only,
            )
            try:
                bind_check.verify(runtime, name, expected)
            except BaseException:
                container.remove()
                raise
        return container

    auth = ctx.layout.run_dir / f"registry-auth-{ctx.node.index}"
    state = _state_dir(ctx.layout)

    def pull(always: bool) -> bool:
        pulled = job_container.prepare_image(
            runtime, spec, auth, state, tasks.should_stop, always=always, progress=ctx.log
        )
        if pulled:
            ctx.log(f"pulled image {image}")
        return pulled

    try:
        # pulled first where it must be; else looked for (and pulled) only when the
        # container could not start
        pulled = job_container.must_pull(runtime, spec, state) and pull(always=True)
        try:
            tasks.container = start()
        except job_container.ContainerError:
            if pulled or not pull(always=False):
                raise  # the image was there: it failed for another reason
            tasks.container = start()
    except bind_check.BindChanged as exc:
        raise JobFailure(
            "FailedStartingContainer",
            f"Unable to start the job's container: {exc}; no task ran in it",
            imageName=image,
            Info=str(exc),
        ) from exc
    except job_container.ContainerError as exc:
        if tasks.should_stop():
            raise tasks.stopping.reason() from exc
        raise JobFailure(
            "FailedStartingContainer",
            f"Unable to start the job's container: {exc.message}",
            imageName=image,
            Info=exc.info or exc.message,
        ) from exc
    if tasks.cgroup is not None:
        # the runtime's group holds the container's processes: the slot counts its OOM
        # kills and process-limit hits, and empties it at the end, as its own
        tasks.cgroup.watch(tasks.container.groups)
    if gpus is not None and runtime == containers.APPTAINER:
        # --nv shows every GPU of the machine: the host's indices pick the node's
        env.variables["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, gpus))
    elif gpus is not None:
        # the container sees only the node's GPUs, numbered from 0; NVIDIA's runtime hooks
        # read the host's indices
        env.variables["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(len(gpus)))
        env.variables["NVIDIA_VISIBLE_DEVICES"] = ",".join(map(str, gpus)) if gpus else "void"
    tasks.container_env = set(env.variables)
    ctx.log(f"job preparation and the job run in container {name} (image {image}, {runtime})")
    ctx.log(_describe(runtime, seal, binds, read_only))


def _state_dir(layout: NodeLayout) -> Path:
    """Where the machine notes the images pulled with a registry login (its container
    runtime's image store is the whole machine's): the node's state directory (a Slurm
    host's), or beside a local slot's run directories, in the installation's runs root, which
    every local slot of the machine shares (its node root is its cluster's) and no job sees."""
    return layout.node_state or layout.run_dir.parent


def _seal(tasks: NodeTasks) -> containers.Seal:
    """The container's user and limits: those of the node's sandbox (the job user, when the
    runner is root) and control group; with --no-sandbox, the image's user and the limits."""
    ctx = tasks.ctx
    limits = tasks.cgroup.limits if tasks.cgroup is not None else node_limits(ctx)
    sandbox = tasks.sandbox
    if sandbox is None:
        return containers.Seal(None, limits, confined=False)
    who = sandbox.identity
    user = (
        containers.JobUser(who.uid, who.gid, who.name, ctx.layout.job_temp)
        if who.switches
        else None
    )
    return containers.Seal(user, limits)


def _describe(runtime: str, seal: containers.Seal, binds: list[Path], read_only: list[Path]) -> str:
    """One line on how the container is sealed off, like the host sandbox's."""
    lim = seal.limits
    limits = ", ".join(
        [
            f"{lim.cpus:g} CPUs" if lim.cpus else "CPUs unbounded",
            f"{lim.memory_bytes // 2**20} MiB memory" if lim.memory_bytes else "memory unbounded",
            f"{lim.processes} processes" if lim.processes else "processes unbounded",
        ]
    )
    if seal.user is not None and containers.root_is_job_user(runtime, seal):
        who = f"as root inside, user {seal.user.name} (uid {seal.user.uid}) on the host"
    elif seal.user is not None:
        who = f"as user {seal.user.name} (uid {seal.user.uid})"
    else:
        who = "as the image's user" + ("" if seal.confined else " (--no-sandbox)")
    how = "own PID namespace"
    how += ", no capabilities" if seal.user is not None else ""
    how += ", no new privileges" if seal.confined else ""
    shown = ", ".join(
        f"{p} (read-only)" if ro else str(p) for p, ro in containers.bound(binds, read_only)
    )
    return (
        f"container sealed by {runtime} ({how}) {who}; limits {limits}; host paths bound: {shown}"
    )


def _binds(tasks: NodeTasks, env: JobEnvironment) -> list[Path]:
    """What the container sees at the host's paths, as the host sandbox binds it: the
    node's volumes and job folders (not the rest of the node root), the shared job temp,
    the directories embedded volumes link to, the output folders."""
    layout = tasks.ctx.layout
    # where each embedded volume's link points, as recorded when it was mounted: the links
    # themselves lie in the mount root, which the job (its setup task) can write
    mounts = tasks.volumes.mounts if tasks.volumes is not None else []
    targets = [m.local_source for m in mounts if m.local_source is not None]
    return [
        layout.mount_root,
        layout.job_temp_dir,
        layout.shared_job_temp,
        *targets,
        Path(env.stdouterr_dir),
        *[Path(p) for p in env.output_dirs.values()],
    ]


def _read_only(tasks: NodeTasks) -> list[Path]:
    """The volumes mounted read-only (``mountOptions`` ro): an embedded one's folder (which
    a job that mounted it read-write made the job user's), a copy below the mount root."""
    mounts = tasks.volumes.mounts if tasks.volumes is not None else []
    return read_only_paths(mounts)


def _anchors(tasks: NodeTasks) -> dict[Path, Anchor]:
    """The embedded volumes' folders to bind, by path, each with its anchor (the volume's
    directory and the names below it, which jobs write: reached through no link)."""
    mounts = tasks.volumes.mounts if tasks.volumes is not None else []
    return {
        m.local_source: m.anchor
        for m in mounts
        if m.local_source is not None and m.anchor is not None
    }

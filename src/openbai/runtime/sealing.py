"""How a node seals its job off: the sandbox its tasks run in (sandbox.py), the control
group that bounds and tracks them (cgroups.py), which volumes the job user may write, and
what the limits did to the job, told in the execution log and the job's errors."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from openbai.errors import MountError
from openbai.mounts.base import Mount
from openbai.plan.job_plan import NodeLimits
from openbai.plan.results import JobError
from openbai.runtime.cgroups import Cgroup
from openbai.runtime.environment import node_gpus
from openbai.runtime.gpu_devices import gpu_view, sandboxed_indices
from openbai.runtime.node import NodeContext
from openbai.runtime.sandbox import (
    JOB_USER,
    Identity,
    Sandbox,
    SandboxUnavailable,
    find_bwrap,
    find_setpriv,
    probe,
    real_path,
    tool_paths,
)
from openbai.runtime.stopping import JobFailure


def group_prefix(job_uid: str) -> str:
    """The start of the names of a job's control groups (one per node)."""
    return f"openbai-{job_uid[:13]}-"


#: processes a slot may have when neither its cluster nor its scheduler sets a limit (Slurm
#: counts none by default): a fork bomb stops there instead of taking the machine
DEFAULT_PROCESSES = 4096


def node_limits(ctx: NodeContext) -> NodeLimits:
    """The plan's limits; on a Slurm node, what Slurm gave the job where the plan sets none,
    and at most :data:`DEFAULT_PROCESSES` processes where nothing does. A node whose tasks do
    the work of other nodes of its host too (:attr:`NodeContext.hosted`) has their limits
    added to its own."""
    lim = ctx.plan.limits
    cpus = os.environ.get("SLURM_CPUS_ON_NODE")
    memory_mb = os.environ.get("SLURM_MEM_PER_NODE")
    share = len(ctx.hosted)
    cpu_count = lim.cpus or (float(cpus) if cpus and cpus.isdigit() else None)
    memory = lim.memory_bytes or (
        int(memory_mb) * 2**20 if memory_mb and memory_mb.isdigit() else None
    )
    return NodeLimits(
        cpus=None if cpu_count is None else cpu_count * share,
        memory_bytes=None if memory is None else memory * share,
        processes=(lim.processes or DEFAULT_PROCESSES) * share,
    )


#: where munged's socket is unless Slurm's configuration says otherwise
_MUNGE_DIRS = ("/run/munge", "/var/run/munge")


def scheduler_sockets(env: dict[str, str]) -> list[Path]:
    """What lets a program reach Slurm as the user it runs as: the folders of munge's socket
    (the default ones, and the one Slurm's configuration names). A job sees none: as the job
    user it could submit work of its own outside openbai."""
    paths = [Path(d) for d in _MUNGE_DIRS]
    conf = env.get("SLURM_CONF") or "/etc/slurm/slurm.conf"
    try:
        text = Path(conf).read_text()
    except OSError:
        return paths
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip().lower() == "authinfo":
            for option in value.split(","):
                name, _, socket = option.partition("=")
                folder = Path(socket.strip()).parent
                # a folder of munge's own, not one such as /run that holds much else
                if name.strip().lower() == "socket" and "munge" in folder.name:
                    paths.append(folder)
    return paths


def node_sandbox(
    *,
    hidden: Sequence[Path],
    writable: Sequence[Path],
    env: dict[str, str],
    gpus: list[int] | None,
    probe_state: Path | None = None,
) -> Sandbox:
    """The sandbox a node's commands run in, a job's tasks and a node exec alike: as the job
    user, with ``hidden`` (the installation's folders) and every munge socket emptied,
    ``writable`` bound back, the tools ``env`` finds, and only the device files of ``gpus``
    (None: every GPU's). ``SandboxUnavailable`` where none can be made on this node (a
    success of the probe is remembered in ``probe_state``: see :func:`probe`)."""
    identity = Identity.for_jobs(os.environ.get(JOB_USER))
    bwrap = find_bwrap()
    if identity.switches and find_setpriv() is None:
        raise SandboxUnavailable("setpriv (util-linux) is not installed on this node")
    probe(bwrap, probe_state)
    return Sandbox(
        bwrap,
        identity,
        hidden=[*hidden, *scheduler_sockets(dict(os.environ))],
        writable=writable,
        readable=tool_paths(env),
        gpus=gpu_view(gpus),
    )


def seal(ctx: NodeContext) -> tuple[Sandbox | None, Cgroup | None]:
    """The node's sandbox (None with --no-sandbox) and control group (None where none can be
    made); a node that must sandbox but cannot fails the job here, before anything runs."""
    sandbox = None
    if ctx.plan.sandbox:
        layout = ctx.layout
        hidden = [layout.run_dir.parent, layout.node_root.parent, *map(Path, ctx.plan.private)]
        if os.environ.get("OPENBAI_HOME"):
            hidden.append(Path(os.environ["OPENBAI_HOME"]))
        try:
            sandbox = node_sandbox(
                hidden=hidden,
                writable=[layout.mount_root, layout.job_temp_dir, layout.shared_job_temp],
                env=ctx.host_env(),
                gpus=host_gpus(ctx),
                probe_state=layout.node_state,
            )
        except SandboxUnavailable as exc:
            raise JobFailure("SandboxUnavailable", exc.message) from exc
        # the node's folders stay root's while the runner mounts into them by path: a node
        # exec (or a setup task) could otherwise put a link where a volume is to be mounted,
        # and have root mount it over a host folder (preparation.py releases them)
        sandbox.held = {layout.mount_root, layout.job_temp_dir}
        for path in sandbox.writable:
            sandbox.grant(path)
    name = f"{group_prefix(ctx.plan.job_uid)}{ctx.node.index}"
    return sandbox, Cgroup.create(name, node_limits(ctx))


def host_gpus(ctx: NodeContext) -> list[int] | None:
    """The machine's GPUs the node's tasks use, by index, whose device files its sandbox
    binds and its container gets: those openbai gave the node (and the nodes it hosts), or
    those its scheduler assigned (none when it assigned none); None (every GPU's files) only
    where the scheduler names them otherwise than by index."""
    if ctx.gpus is not None:
        return ctx.gpus
    assigned = node_gpus(ctx.node, ctx.host_env())
    return [int(g) for g in assigned] if all(g.isdigit() for g in assigned) else None


def cuda_devices(ctx: NodeContext) -> list[int] | None:
    """What ``CUDA_VISIBLE_DEVICES`` lists for the node's tasks: in a sandbox, which shows
    them only their GPUs' device files, 0 to n-1; without one, the machine's indices; None:
    the scheduler's own value stands."""
    gpus = host_gpus(ctx)
    if ctx.plan.sandbox and gpus is not None:
        return sandboxed_indices(gpus)
    return ctx.gpus


def read_only_paths(mounts: Sequence[Mount]) -> list[Path]:
    """Where the volumes mounted read-only are (an embedded one's folder, a copy): those the
    job does not also mount read-write (the same folder twice, as Batch AI let it), which
    stays writable through that mount, and its outputs there too."""
    writable = {m.local_source or m.path for m in mounts if not m.spec.read_only}
    shown = [m.local_source or m.path for m in mounts if m.spec.read_only]
    return [p for p in shown if p not in writable]


def open_volumes(
    sandbox: Sandbox | None, mounts: list[Mount], made: list[str] | None = None
) -> None:
    """Bind embedded volumes (links to directories the job could not reach) into the
    sandbox, writable by the job user like everything else it mounts, with the folders
    the runner ``made`` in them (output and stdouterr folders)."""
    if sandbox is None:
        return
    for shown in read_only_paths(mounts):
        # bound read-only over whatever bound it writable (a link's directory, a copy); a
        # FUSE mount is read-only in the kernel already
        if shown not in sandbox.readable:
            sandbox.readable.append(shown)
    for mount in mounts:
        if mount.spec.read_only:
            continue
        if mount.local_source is not None and mount.local_source not in sandbox.writable:
            sandbox.writable.append(mount.local_source)
    for mount in mounts:
        if mount.local_source is not None and mount.anchor is not None:
            sandbox.anchors[mount.local_source] = mount.anchor
    try:
        for path in sandbox.writable:
            sandbox.grant(path, sandbox.anchors.get(path))
    except MountError as exc:  # another job put a link where a volume's folder was
        raise JobFailure("AZFMountError", f"Unable to mount a volume: {exc.message}") from exc
    roots = [r for r in map(real_path, map(str, sandbox.writable)) if r is not None]
    for folder in made or []:
        real = real_path(folder)
        root = real and next((r for r in roots if real.startswith(r.rstrip("/") + "/")), None)
        if real and root:
            sandbox.grant_path(Path(real), Path(root))


def describe(ctx: NodeContext, sandbox: Sandbox | None, cgroup: Cgroup | None) -> None:
    """One line on how tasks are sealed off, one on their limits."""
    if sandbox is not None:
        ctx.log(sandbox.describe())
    else:
        ctx.log(
            f"not sandboxed (the cluster was created with --no-sandbox): tasks run as "
            f"{Identity.current().name} and see the whole machine"
        )
    if cgroup is not None:
        ctx.log(cgroup.describe())
    else:
        ctx.log("limits: none (no control group can be made on this node)")


def limit_errors(ctx: NodeContext, cgroup: Cgroup | None) -> list[JobError]:
    """The job's errors from its limits, once its tasks are stopped; the group is removed."""
    if cgroup is None:
        return []
    errors = []
    cgroup.kill_all()
    if cgroup.process_limit_hits():
        ctx.log(
            f"the job's processes reached the limit of {cgroup.limits.processes} processes on "
            f"node {ctx.node.node_id} (a fork failed {cgroup.process_limit_hits()} times)"
        )
    if cgroup.oom_kills():
        memory = cgroup.limits.memory_bytes
        limit = f"{memory // 2**20} MiB" if memory else "its limit"
        message = (
            f"the job used more memory than its node's limit ({limit}) on node "
            f"{ctx.node.node_id}: the kernel killed {cgroup.oom_kills()} of its processes"
        )
        ctx.log(message)
        errors.append(JobError("JobMemoryLimitExceeded", message))
    cgroup.remove()
    return errors

"""Everything a node does before the toolkit runs, in Batch AI's order: fresh job
directories, cluster volumes, the cluster's setup task (once per node), the job's volumes,
output folders, the host file, the job's container (or, on the other nodes of an MPI job,
taking mpirun's daemons), job preparation, and waiting until every node of the job is
prepared.

A node of a local cluster runs the setup task when it is allocated, in a run of its own
(a plan with ``setup_only``, see :func:`prepare_setup_only`); its marker then tells the
dispatcher and the node counts that the node is ready (or unusable, when the task failed).
"""

from __future__ import annotations

import fcntl
from pathlib import Path

from openbai.mounts.base import Mount
from openbai.mounts.table import remove_tree
from openbai.plan.results import wait_until
from openbai.runtime.environment import JobEnvironment, build_environment
from openbai.runtime.expand import expand_path
from openbai.runtime.node import MPI_TOOLS
from openbai.runtime.output_files import Volumes
from openbai.runtime.sealing import cuda_devices, describe, open_volumes, seal
from openbai.runtime.stopping import JobFailure
from openbai.runtime.tasks import NodeTasks
from openbai.runtime.toolkits import host_file_lines
from openbai.runtime.volumes import mount_all

SETUP_DONE = "done"
SETUP_FAILED = "failed"


def setup_marker(setup_dir: Path, cluster_uid: str, state: str = SETUP_DONE) -> Path:
    return setup_dir / f"{cluster_uid}.{state}"


def setup_state(setup_dir: Path, cluster_uid: str) -> str | None:
    """``done``, ``failed`` (the node is unusable) or None (not run yet, or running)."""
    for state in (SETUP_DONE, SETUP_FAILED):
        if setup_marker(setup_dir, cluster_uid, state).exists():
            return state
    return None


def forget_setup(setup_dir: Path, cluster_uid: str) -> None:
    """The node was given back: a node allocated again runs the setup task again."""
    for state in (SETUP_DONE, SETUP_FAILED):
        setup_marker(setup_dir, cluster_uid, state).unlink(missing_ok=True)


def prepare_setup_only(tasks: NodeTasks, mounts: list[Mount]) -> None:
    """Run the cluster's setup task on a node just allocated: its volumes mounted, in the
    sandbox, as before a job; a failure is marked, so that the node counts as unusable."""
    ctx = tasks.ctx
    ctx.log(f"node {ctx.node.node_id} allocated to cluster {ctx.plan.cluster_name}")
    try:
        remove_tree(ctx.layout.job_temp_dir)
        ctx.layout.job_temp.mkdir(parents=True)
        ctx.layout.mount_root.mkdir(parents=True, exist_ok=True)
        tasks.sandbox, tasks.cgroup = seal(ctx)
        tasks.volumes = Volumes(mounts)
        mounts.extend(mount_all(ctx.plan.cluster_mounts, ctx.layout.mount_root, ctx.log))
        if tasks.sandbox is not None:
            tasks.sandbox.release()  # mounted: the setup task may write the node's folders
        open_volumes(tasks.sandbox, mounts)
        env = _environment(tasks)
        _run_setup_task(tasks, env)
    except BaseException as exc:
        failed = setup_marker(ctx.layout.setup_marker_dir, ctx.plan.cluster_uid, SETUP_FAILED)
        failed.parent.mkdir(parents=True, exist_ok=True)
        failed.write_text(f"{exc}\n")
        raise


def prepare_node(tasks: NodeTasks, mounts: list[Mount]) -> JobEnvironment:
    """Prepare the node for the job; what it mounts is added to ``mounts`` as it goes."""
    ctx = tasks.ctx
    plan, layout, node = ctx.plan, ctx.layout, ctx.node
    ctx.log(
        f"job {plan.workspace}/{plan.experiment}/{plan.job_name} on node {node.node_id} ({node.host})"
    )
    remove_tree(layout.job_temp_dir)
    remove_tree(layout.mount_root)
    layout.job_temp.mkdir(parents=True)
    layout.mount_root.mkdir(parents=True, exist_ok=True)
    layout.shared_job_temp.mkdir(parents=True, exist_ok=True)
    # written while the folder is root's (by path, like the mounts below: see seal)
    process_count = int(plan.toolkit.get("processCount") or plan.node_count)
    layout.host_file.write_text("\n".join(host_file_lines(plan.nodes, process_count)) + "\n")
    tasks.sandbox, tasks.cgroup = seal(ctx)
    volumes = tasks.volumes = Volumes(mounts)
    mounts.extend(mount_all(plan.cluster_mounts, layout.mount_root, ctx.log))
    open_volumes(tasks.sandbox, mounts)
    env = _environment(tasks)
    _run_setup_task(tasks, env)
    mounts.extend(mount_all(plan.job_mounts, layout.job_mount_root, ctx.log))
    for folder in [env.stdouterr_dir, *env.output_dirs.values()]:
        volumes.make_dirs(folder)
    if tasks.sandbox is not None:
        tasks.sandbox.release()  # nothing more is done there by path
    open_volumes(tasks.sandbox, mounts, [env.stdouterr_dir, *env.output_dirs.values()])
    describe(ctx, tasks.sandbox, tasks.cgroup)
    if len(ctx.hosted) > 1:
        others = ", ".join(n.node_id for n in ctx.hosted if n.index != node.index)
        ctx.log(
            f"mpirun starts the ranks of node(s) {others} here, on the same host, beside this"
            " node's: the limits above and the GPUs are theirs and this node's together"
        )
    name = f"execution-{node.node_id}.log" if ctx.multi else "execution.log"
    log_file = Path(env.stdouterr_dir) / name
    ctx.log.attach(log_file, volumes.open_append(str(log_file)))
    for key in sorted(k for k in env.variables if k.startswith("AZ_BATCHAI_")):
        ctx.log(f"{key}={env.variables[key]}")
    if ctx.multi and plan.tool_type in MPI_TOOLS:
        _take_mpi_daemons(tasks, env)
    if plan.container is not None:
        # loaded only here: a Slurm node runner is a new Python for every job, and the
        # container modules would add ~6 ms to each job that has no container
        from openbai.runtime.node_container import start_container

        start_container(tasks, env)
    _job_preparation(tasks, env)
    return env


def _environment(tasks: NodeTasks) -> JobEnvironment:
    """The job's variables on this node, its GPUs as its sandbox shows them included; a
    ``$HOME`` in them is the job user's, as the tasks will see it."""
    ctx = tasks.ctx
    start = tasks.env(JobEnvironment({}, "", {}), {})
    return build_environment(ctx.plan, ctx.node, ctx.layout, start, visible_gpus=cuda_devices(ctx))


def _take_mpi_daemons(tasks: NodeTasks, env: JobEnvironment) -> None:
    """On a node other than the first one's host, take mpirun's daemons from now on: the
    first node starts mpirun once every node is prepared."""
    from openbai.runtime import mpi_daemons  # sockets and threads: for MPI jobs only

    if tasks.ctx.node.index in mpi_daemons.other_hosts(tasks.ctx):
        listener = mpi_daemons.DaemonListener(tasks, env)
        tasks.before_stop.append(listener.close)


def _run_setup_task(tasks: NodeTasks, env: JobEnvironment) -> None:
    ctx = tasks.ctx
    setup = ctx.plan.setup_task
    marker = setup_marker(ctx.layout.setup_marker_dir, ctx.plan.cluster_uid)
    if setup is None or marker.exists():
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    # jobs sharing a node (Slurm) run the setup task once: the others wait for it here
    with open(marker.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists():
            _run_setup_command(tasks, env)
            marker.touch()


def _run_setup_command(tasks: NodeTasks, env: JobEnvironment) -> None:
    ctx = tasks.ctx
    setup = ctx.plan.setup_task
    assert setup is not None
    node_id = ctx.node.node_id
    values = {**ctx.host_env(), **env.variables, **setup.environment, **setup.secrets}
    out_dir = Path(expand_path(setup.std_out_err_path_prefix, values)) / setup.output_suffix
    assert tasks.volumes is not None  # the cluster's volumes are mounted
    tasks.volumes.make_dirs(str(out_dir))
    ctx.log(f"running the cluster's setup task on {node_id}")
    code = tasks.run_to_end(
        setup.command_line,
        values,
        out_dir / f"stdout-{node_id}.txt",
        out_dir / f"stderr-{node_id}.txt",
    )
    if code != 0:
        raise JobFailure(
            "SetupTaskFailed",
            f"the cluster's setup task failed on node {node_id} with exit code {code}",
            code,
        )


def _job_preparation(tasks: NodeTasks, env: JobEnvironment) -> None:
    ctx = tasks.ctx
    command = ctx.plan.job_preparation
    if command:
        suffix = f"-{ctx.node.node_id}" if ctx.multi else ""
        out = Path(env.stdouterr_dir)
        ctx.log("running job preparation")
        code = tasks.run_to_end(
            command,
            tasks.env(env, {}),
            out / f"stdout-job_prep{suffix}.txt",
            out / f"stderr-job_prep{suffix}.txt",
        )
        ctx.log(f"job preparation exited with code {code}")
        ctx.run.mark_prepared(ctx.node.index, code == 0)
        if code != 0:
            raise JobFailure(
                "JobPreparationFailed",
                f"job preparation failed on node {ctx.node.node_id} with exit code {code}",
                code,
            )
    else:
        ctx.run.mark_prepared(ctx.node.index, True)
    others = [n.index for n in ctx.plan.nodes]

    def gone() -> list[int]:  # runners killed before they said how their preparation went
        return [k for k in tasks.stopping.lost() if ctx.run.prepared(k) is None]

    if not wait_until(
        lambda: all(ctx.run.prepared(k) is not None for k in others),
        stop=lambda: tasks.should_stop() or bool(gone()),
    ):
        if gone():  # the first node reports that node lost (job_outcome), as one error
            node = ctx.plan.nodes[gone()[0]].node_id
            raise JobFailure("JobEnded", f"node {node}'s runner is gone in its preparation")
        raise tasks.stopping.reason()
    failed = [k for k in others if ctx.run.prepared(k) is False]
    if failed:  # that node reports the failure, with its exit code: this one just ends
        raise JobFailure(
            "JobEnded", f"job preparation failed on node {ctx.plan.nodes[failed[0]].node_id}"
        )

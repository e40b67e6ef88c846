"""The node runner: runs one node's part of a job, from mounting volumes to flushing outputs.

``python -m openbai.runtime.runner --run-dir DIR --node K --node-root DIR``

Executors whose scheduler picks the nodes (Slurm) add ``--hosts H0,H1,...`` (the allocated
hosts, in node order), ``--node-state DIR`` (node state that outlives the job),
``--keep-env PREFIX`` (scheduler variables the job's processes keep: a Slurm job's own,
``SLURM_JOB_ID``...) and ``--remove-node-root`` (the node root was made for this job).

Order on every node, as on Batch AI: cluster setup task (once per node) → mount cluster and
job volumes → create output folders → job preparation → wait until every node is prepared →
the toolkit's processes → stop → flush and unmount → report. The first node decides when the
job's work is over and writes the job's outcome last, after every node reported, so that a
job is never reported finished before its outputs are durable.

The steps live in their own modules: preparation.py (before the toolkit), tasks.py (the
job's processes), node_container.py (its container), volumes.py, reporting.py, stopping.py
(early ends).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

from openbai.mounts.base import Mount
from openbai.plan.job_plan import JobPlan, NodeSpec
from openbai.plan.results import JobError, Outcome, RunDir
from openbai.plan.runner_command import parser as runner_parser
from openbai.runtime import processes
from openbai.runtime.environment import JobEnvironment
from openbai.runtime.node import NodeContext
from openbai.runtime.ports import PortBlock
from openbai.runtime.preparation import prepare_node, prepare_setup_only
from openbai.runtime.reporting import (
    Heartbeat,
    Liveness,
    SpaceReserve,
    disk_full,
    give_up,
    job_outcome,
)
from openbai.runtime.sealing import limit_errors
from openbai.runtime.stopping import JobFailure, Stopping
from openbai.runtime.tasks import NodeTasks
from openbai.runtime.toolkits import ToolkitContext, plan_tasks
from openbai.runtime.volumes import disk_full_error, remove_node_root, unmount_all


class NodeRunner:
    def __init__(
        self,
        plan: JobPlan,
        node_index: int,
        node_root: Path,
        run_dir: Path,
        *,
        node_state: Path | None = None,
        keep_env: tuple[str, ...] = (),
        remove_node_root: bool = False,
        ports_dir: Path | None = None,
    ):
        self.ports_dir = ports_dir
        self.ctx = NodeContext.open(
            plan, node_index, node_root, run_dir, node_state=node_state, keep_env=keep_env
        )
        self.remove_node_root = remove_node_root
        self.reserve = SpaceReserve(run_dir / f"node-{node_index}.reserve")
        self.started = time.time()
        self.stopping = Stopping(self.ctx, self.started)
        self.tasks = NodeTasks(self.ctx, self.stopping)
        #: the nodes this one waits for: on the first node the others (their reports), on
        #: the others the first (its decision that the job's work is over)
        waits_for = [n.index for n in plan.nodes[1:]] if node_index == 0 else [0]
        self.liveness = Liveness(self.ctx.run, waits_for if self.ctx.multi else [])
        self.stopping.lost = self.liveness.lost

    def execute(self) -> Outcome:
        """Run the node's part of the job; on a node of several, say meanwhile that its
        runner is alive (a node waiting for one that is killed stops waiting)."""
        if not self.ctx.multi:
            return self._execute()
        heartbeat = Heartbeat(self.ctx.run, self.ctx.node.index)
        heartbeat.start()
        try:
            return self._execute()
        finally:
            heartbeat.stop()

    def _execute(self) -> Outcome:
        ctx = self.ctx
        outcome = Outcome(exit_code=None, start_time=self.started)
        mounts: list[Mount] = []
        with ExitStack() as cleanup:
            cleanup.callback(self.tasks.remove_container)
            try:
                if ctx.plan.setup_only:
                    prepare_setup_only(self.tasks, mounts)
                    outcome.exit_code = 0
                else:
                    self._hold_ports(cleanup)
                    env = prepare_node(self.tasks, mounts)
                    outcome.exit_code = self._run_job(env)
            except JobFailure as failure:
                ctx.log(f"job failed: {failure}")
                outcome.exit_code = failure.exit_code
                outcome.errors.append(failure.error)
                give_up(ctx)
            except Exception as exc:  # a bug or an unexpected system error: still report it
                outcome.exit_code = -1
                if isinstance(exc, OSError) and disk_full(exc):
                    self.reserve.release()  # room for the reports below
                    # a run-directory write names no file: the log's failure may, else
                    # the run directory is what could not be written
                    named = exc
                    if not exc.filename:
                        named = ctx.log.failure or OSError(
                            exc.errno, exc.strerror, str(ctx.run.path)
                        )
                    outcome.errors.append(disk_full_error(named, mounts, ctx.layout))
                else:
                    outcome.errors.append(
                        JobError("InternalError", f"openbai runner failed: {exc!r}")
                    )
                ctx.log(f"job failed: {outcome.errors[-1].message}")
                give_up(ctx)
            finally:
                self.tasks.stop_all()
                outcome.errors.extend(limit_errors(ctx, self.tasks.cgroup))
        outcome.errors.extend(unmount_all(mounts, ctx.layout, ctx.log))
        failed = ctx.log.failure  # the execution log hit a full disk (the job's or the node's)
        if failed is not None and disk_full(failed):
            if all(e.code != "DiskFull" for e in outcome.errors):
                outcome.errors.append(disk_full_error(failed, mounts, ctx.layout))
        if self.remove_node_root:
            remove_node_root(ctx.layout, ctx.log)
        if outcome.errors and outcome.exit_code == 0:
            outcome.exit_code = -1
        outcome.end_time = time.time()
        ctx.log(f"node finished with exit code {outcome.exit_code}")
        self.reserve.release()  # the results below fit even on a disk that filled up
        ctx.run.write_node_result(ctx.node.index, outcome)
        if ctx.is_master:
            outcome = job_outcome(ctx, outcome, self.stopping.requested, self.liveness)
            ctx.run.write_job_result(outcome)
            # every node has reported (or is given up): the plan, with the job's secrets and
            # storage keys, is not kept past the job
            ctx.run.discard_secrets()
        ctx.log.close()
        return outcome

    def _run_job(self, env: JobEnvironment) -> int:
        """Run the toolkit's tasks of this node until the job's work is over; its exit code."""
        ctx, tasks = self.ctx, self.tasks
        toolkit = ToolkitContext(
            with_ports(ctx.plan, ctx.run),
            env.variables,
            str(ctx.layout.host_file),
            tasks.python(env),
        )
        out = Path(env.stdouterr_dir)
        for task in plan_tasks(toolkit):
            if task.node_index != ctx.node.index:
                continue
            ctx.log(f"starting task {task.name or 'main'}: {task.command}")
            extra = task.env
            if task.mpi and ctx.multi:
                from openbai.runtime.mpi_daemons import agent_env

                extra = {**extra, **agent_env(tasks, env)}
            tasks.start(task, tasks.env(env, extra), out / task.stdout_name, out / task.stderr_name)
        primaries = [r for r in tasks.running if r.task.primary]
        reported = False
        while True:
            if not reported and all(r.process.poll() is not None for r in primaries):
                code = next((c for c in (r.exit_code() for r in primaries) if c != 0), 0)
                ctx.run.mark_done(ctx.node.index, code)
                reported = True
            if ctx.is_master:
                self._decide_finished()
            if ctx.run.is_finished():
                break
            if not ctx.is_master and self.liveness.lost():
                first = ctx.plan.nodes[0].node_id
                raise JobFailure(
                    "NodeLost", f"node {first} did not report the job's end: its runner is gone"
                )
            # the job having ended is looked at once, above: a node with nothing left to run
            # that the first node's finish reached meanwhile ends normally next round
            if self.stopping.interrupted():
                raise self.stopping.reason()
            tasks.wait()
        for r in tasks.running:
            if r.process.poll() is not None:
                ctx.log(f"task {r.task.name or 'main'} exited with code {r.exit_code()}")
        return ctx.run.done(ctx.node.index) if reported else -1  # type: ignore[return-value]

    def _hold_ports(self, cleanup: ExitStack) -> None:
        """Take a block of ports of this host for the node's tasks, and say which to the
        other nodes (they read it once every node is prepared: :func:`with_ports`)."""
        if self.ports_dir is None:
            return
        ctx = self.ctx
        block = PortBlock.hold(self.ports_dir, ctx.node.port_base)
        cleanup.callback(block.close)
        ctx.run.set_port_base(ctx.node.index, block.base)

    def _decide_finished(self) -> None:
        """The job's work is over when every node's primary tasks ended, or one's failed or
        its runner is gone (its tasks are lost with it: job_outcome says so)."""
        codes = [self.ctx.run.done(n.index) for n in self.ctx.plan.nodes]
        if all(c is not None for c in codes) or any(c not in (None, 0) for c in codes):
            self.ctx.run.mark_finished()
        elif any(codes[k] is None for k in self.liveness.lost()):
            self.ctx.run.mark_finished()


def with_ports(plan: JobPlan, run: RunDir) -> JobPlan:
    """The plan with the ports its nodes' runners hold (those that hold none keep the plan's)."""
    nodes = [n._replace(port_base=run.port_base(n.index) or n.port_base) for n in plan.nodes]
    return plan._replace(nodes=nodes)


def with_hosts(plan: JobPlan, hosts: list[str]) -> JobPlan:
    """The plan on the hosts a scheduler allocated: node ``i`` is ``hosts[i]`` (id and host)."""
    nodes = [
        NodeSpec(n.index, host, host, n.port_base)
        for n, host in zip(plan.nodes, hosts, strict=True)
    ]
    return plan._replace(nodes=nodes)


def main(argv: list[str] | None = None) -> int:
    parser = runner_parser()
    args = parser.parse_args(argv)
    for name in ("run_dir", "node_root", "node_state"):
        if getattr(args, name) is not None:
            setattr(args, name, getattr(args, name).absolute())
    # what the runner starts works from the run directory, not from wherever the dispatcher
    # was started: a program that leaves files where it runs (podman's conmon writes `oom`
    # when the kernel kills a container's process) leaves them with the job
    os.chdir(args.run_dir)
    plan = JobPlan.read(args.run_dir / "plan.json")
    if args.hosts:
        hosts = args.hosts.split(",")
        if len(hosts) != plan.node_count:
            parser.error(f"--hosts names {len(hosts)} hosts for a job of {plan.node_count} nodes")
        plan = with_hosts(plan, hosts)
    runner = NodeRunner(
        plan,
        args.node,
        args.node_root,
        args.run_dir,
        node_state=args.node_state,
        keep_env=tuple(args.keep_env),
        remove_node_root=args.remove_node_root,
        ports_dir=args.ports_dir,
    )
    runner.ctx.run.record_runner(args.node, os.getpid(), processes.process_start_time(os.getpid()))

    def on_signal(signum: int, frame: FrameType | None) -> None:
        runner.stopping.requested.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # a fork server's runner starts with them blocked: one that came meanwhile arrives now
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    runner.execute()
    return 0


if __name__ == "__main__":
    code = main()
    # the node's outcome is on disk and synced, its processes and mounts are gone: what is
    # left is the interpreter's teardown, which frees every module and object one by one
    # (~10 ms, while a Slurm job's slot stays taken), so the runner leaves without it
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

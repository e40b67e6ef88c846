"""The node runner: runs one node's part of a job, from mounting volumes to flushing outputs.

``python -m openbai.runtime.runner --run-dir DIR --node K --node-root DIR``

Executors whose scheduler picks the nodes (Slurm) add ``--hosts H0,H1,...`` (the allocated
hosts, in node order), ``--node-state DIR`` (node state that outlives the job),
``--keep-env PREFIX`` (scheduler variables the job's processes keep, so that ``mpirun``
finds its allocation) and ``--remove-node-root`` (the node root was made for this job).

Order on every node, as on Batch AI: cluster setup task (once per node) → mount cluster and
job volumes → create output folders → job preparation → wait until every node is prepared →
the toolkit's processes → stop → flush and unmount → report. The first node decides when the
job's work is over and writes the job's outcome last, after every node reported, so that a
job is never reported finished before its outputs are durable.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import os
import shutil
import signal
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen
from types import FrameType

from openbai.errors import OpenBaiError
from openbai.mounts.base import Mount
from openbai.mounts.registry import mounter_for
from openbai.mounts.table import remove_tree, sync_filesystem
from openbai.runtime import containers, job_container, processes
from openbai.runtime.environment import JobEnvironment, build_environment
from openbai.runtime.execution_log import ExecutionLog
from openbai.runtime.expand import expand_path
from openbai.runtime.layout import NodeLayout
from openbai.runtime.plan import JobPlan, MountSpec, NodeSpec
from openbai.runtime.results import JobError, Outcome, RunDir, wait_until
from openbai.runtime.toolkits import Task, ToolkitContext, host_file_lines, plan_tasks

#: variables of the runner's own environment that a job must not inherit
_PRIVATE_ENV = ("OPENBAI_", "SLURM_")
#: how long the first node of a stopped job waits for the other nodes' reports
_REPORT_GRACE_SECONDS = 5.0


class JobFailure(Exception):
    def __init__(self, code: str, message: str, exit_code: int = -1, **details: str):
        super().__init__(message)
        self.error = JobError(code, message, [{"name": k, "value": v} for k, v in details.items()])
        self.exit_code = exit_code


@dataclass
class Running:
    task: Task
    process: Popen[bytes]


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
    ):
        self.plan = plan
        self.node = plan.nodes[node_index]
        self.is_master = node_index == 0
        self.multi = plan.node_count > 1
        self.layout = NodeLayout.for_plan(plan, node_root, run_dir, node_state)
        self.keep_env = keep_env
        self.remove_node_root = remove_node_root
        self.run = RunDir(run_dir)
        self.log = ExecutionLog(run_dir / f"node-{node_index}.log")
        self.stop_requested = threading.Event()
        self.started = time.time()
        self.deadline = self.started + plan.max_wall_clock_seconds
        self.container: job_container.JobContainer | None = None
        #: the job's own variables, which are passed into its container
        self.container_env: set[str] = set()
        self.running: list[Running] = []

    # -- the whole node ---------------------------------------------------------------------
    def execute(self) -> Outcome:
        outcome = Outcome(exit_code=None, start_time=self.started)
        mounts: list[Mount] = []
        with ExitStack() as cleanup:
            cleanup.callback(self._stop_container)
            try:
                env = self._prepare_node(mounts)
                outcome.exit_code = self._run_job(env)
            except JobFailure as failure:
                self.log(f"job failed: {failure}")
                outcome.exit_code = failure.exit_code
                outcome.errors.append(failure.error)
                self._give_up()
            except Exception as exc:  # a bug or an unexpected system error: still report it
                self.log(f"internal error: {exc!r}")
                outcome.exit_code = -1
                outcome.errors.append(JobError("InternalError", f"openbai runner failed: {exc!r}"))
                self._give_up()
            finally:
                self._stop_tasks()
        outcome.errors.extend(self._unmount(mounts))
        if self.remove_node_root:
            self._remove_node_root()
        if outcome.errors and outcome.exit_code == 0:
            outcome.exit_code = -1
        outcome.end_time = time.time()
        self.log(f"node finished with exit code {outcome.exit_code}")
        self.run.write_node_result(self.node.index, outcome)
        if self.is_master:
            outcome = self._job_outcome(outcome)
            self.run.write_job_result(outcome)
        self.log.close()
        return outcome

    def _give_up(self) -> None:
        if self.run.prepared(self.node.index) is None:
            self.run.mark_prepared(self.node.index, False)
        if self.is_master:
            self.run.mark_finished()
        elif self.run.done(self.node.index) is None:
            self.run.mark_done(self.node.index, -1)

    # -- before the toolkit -------------------------------------------------------------------
    def _prepare_node(self, mounts: list[Mount]) -> JobEnvironment:
        plan, layout = self.plan, self.layout
        self.log(
            f"job {plan.workspace}/{plan.experiment}/{plan.job_name} on node {self.node.node_id} ({self.node.host})"
        )
        remove_tree(layout.job_temp_dir)
        remove_tree(layout.mount_root)
        layout.job_temp.mkdir(parents=True)
        layout.mount_root.mkdir(parents=True, exist_ok=True)
        layout.shared_job_temp.mkdir(parents=True, exist_ok=True)
        mounts.extend(self._mount_all(plan.cluster_mounts, layout.mount_root))
        env = build_environment(plan, self.node, layout, self._host_env())
        self._run_setup_task(env)
        mounts.extend(self._mount_all(plan.job_mounts, layout.job_mount_root))
        self._make_output_dirs(env)
        name = f"execution-{self.node.node_id}.log" if self.multi else "execution.log"
        self.log.attach(Path(env.stdouterr_dir) / name)
        for key in sorted(k for k in env.variables if k.startswith("AZ_BATCHAI_")):
            self.log(f"{key}={env.variables[key]}")
        layout.host_file.write_text(
            "\n".join(host_file_lines(plan.nodes, self._process_count())) + "\n"
        )
        self._start_container(env)
        self._job_preparation(env)
        return env

    def _host_env(self) -> dict[str, str]:
        return {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(_PRIVATE_ENV) or k.startswith(self.keep_env)
        }

    def _mount_all(self, specs: list[MountSpec], root: Path) -> list[Mount]:
        done = []
        for spec in specs:
            code = "BFSMountError" if spec.volume_kind == "blob" else "AZFMountError"
            target = root / spec.relative_path
            try:
                done.append(mounter_for(spec.backend).mount(spec, target, self.log))
            except OpenBaiError as exc:
                for mount in done:
                    mount.unmount()
                raise JobFailure(
                    code,
                    f"Unable to mount {spec.volume_kind} volume {spec.account}/{spec.volume} at {target}: {exc.message}",
                ) from exc
        return done

    def _make_output_dirs(self, env: JobEnvironment) -> None:
        for path in [env.stdouterr_dir, *env.output_dirs.values()]:
            try:
                Path(path).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise JobFailure(
                    "OutputDirectoryError", f"cannot create {path}: {exc.strerror}"
                ) from exc

    def _process_count(self) -> int:
        return int(self.plan.toolkit.get("processCount") or self.plan.node_count)

    def _run_setup_task(self, env: JobEnvironment) -> None:
        setup = self.plan.setup_task
        marker = self.layout.setup_marker_dir / f"{self.plan.cluster_uid}.done"
        if setup is None or marker.exists():
            return
        marker.parent.mkdir(parents=True, exist_ok=True)
        # jobs sharing a node (Slurm) run the setup task once: the others wait for it here
        with open(marker.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not marker.exists():
                self._run_setup_command(env)
                marker.touch()

    def _run_setup_command(self, env: JobEnvironment) -> None:
        setup = self.plan.setup_task
        assert setup is not None
        values = {**env.variables, **setup.environment, **setup.secrets}
        out_dir = (
            Path(expand_path(setup.std_out_err_path_prefix, {**self._host_env(), **values}))
            / setup.output_suffix
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        self.log(f"running the cluster's setup task on {self.node.node_id}")
        code = self._run_to_end(
            setup.command_line,
            {**self._host_env(), **values},
            out_dir / f"stdout-{self.node.node_id}.txt",
            out_dir / f"stderr-{self.node.node_id}.txt",
        )
        if code != 0:
            raise JobFailure(
                "SetupTaskFailed",
                f"the cluster's setup task failed on node {self.node.node_id} with exit code {code}",
                code,
            )

    def _start_container(self, env: JobEnvironment) -> None:
        spec = self.plan.container
        if spec is None:
            return
        runtime = containers.find_runtime(self.plan.container_runtime)
        if runtime is None:
            if self.plan.require_container:
                raise JobFailure(
                    "FailedStartingContainer",
                    f"the cluster requires containers, but no container runtime is available for image {spec.image}",
                )
            self.log(
                f"containerSettings asks for image {spec.image}; no container runtime is configured, so the job runs on the host"
            )
            return
        image = containers.image_name(spec)
        name = f"openbai-{self.plan.job_uid[:12]}-{self.node.index}-{os.getpid()}"
        try:
            self.log(f"checking image {image} with {runtime}")
            auth = self.layout.run_dir / f"registry-auth-{self.node.index}"
            if job_container.prepare_image(runtime, spec, auth, self._should_stop):
                self.log(f"pulled image {image}")
            self.log(f"starting container {name} from image {image} with {runtime}")
            log = self.layout.run_dir / f"node-{self.node.index}.container.log"
            binds = self._container_binds(env)
            self.container = job_container.start(runtime, spec, name, binds, log)
        except job_container.ContainerError as exc:
            if self._should_stop():
                raise self._stop_reason() from exc
            raise JobFailure(
                "FailedStartingContainer",
                f"Unable to start the job's container: {exc.message}",
                imageName=image,
                Info=exc.info or exc.message,
            ) from exc
        self.container_env = set(env.variables)
        self.log(f"job preparation and the job run in container {name} (image {image}, {runtime})")

    def _container_binds(self, env: JobEnvironment) -> list[Path]:
        """What the container sees at the host's paths: the node root (job tree and volumes),
        the shared job temp, the directories embedded volumes link to, the output folders."""
        links = [
            root / m.relative_path
            for root, specs in (
                (self.layout.mount_root, self.plan.cluster_mounts),
                (self.layout.job_mount_root, self.plan.job_mounts),
            )
            for m in specs
        ]
        targets = [link.parent / os.readlink(link) for link in links if link.is_symlink()]
        return [
            self.layout.node_root,
            self.layout.shared_job_temp,
            *targets,
            Path(env.stdouterr_dir),
            *[Path(p) for p in env.output_dirs.values()],
        ]

    def _stop_container(self) -> None:
        if self.container is not None:
            self.container.remove()
            self.log(f"removed container {self.container.name}")
            self.container = None

    def _job_preparation(self, env: JobEnvironment) -> None:
        command = self.plan.job_preparation
        if command:
            suffix = f"-{self.node.node_id}" if self.multi else ""
            out = Path(env.stdouterr_dir)
            self.log("running job preparation")
            code = self._run_to_end(
                command,
                self._task_env(env, {}),
                out / f"stdout-job_prep{suffix}.txt",
                out / f"stderr-job_prep{suffix}.txt",
            )
            self.log(f"job preparation exited with code {code}")
            self.run.mark_prepared(self.node.index, code == 0)
            if code != 0:
                raise JobFailure(
                    "JobPreparationFailed",
                    f"job preparation failed on node {self.node.node_id} with exit code {code}",
                    code,
                )
        else:
            self.run.mark_prepared(self.node.index, True)
        others = [n.index for n in self.plan.nodes]
        if not wait_until(
            lambda: all(self.run.prepared(k) is not None for k in others), stop=self._should_stop
        ):
            raise self._stop_reason()
        failed = [k for k in others if self.run.prepared(k) is False]
        if failed:
            raise JobFailure(
                "JobPreparationFailed",
                f"job preparation failed on node {self.plan.nodes[failed[0]].node_id}",
            )

    def _run_to_end(self, command: str, env: dict[str, str], stdout: Path, stderr: Path) -> int:
        proc = self._spawn(command, env, stdout, stderr)
        self.running.append(Running(Task("prep", self.node.index, command), proc))
        while proc.poll() is None:
            if self._should_stop():
                raise self._stop_reason()
            processes.wait_any([proc], timeout=0.05)
        self.running.clear()
        return processes.exit_code(proc.returncode)

    # -- the toolkit ----------------------------------------------------------------------------
    def _run_job(self, env: JobEnvironment) -> int:
        python = self._python(env)
        ctx = ToolkitContext(self.plan, env.variables, str(self.layout.host_file), python)
        tasks = [t for t in plan_tasks(ctx) if t.node_index == self.node.index]
        out = Path(env.stdouterr_dir)
        for task in tasks:
            self.log(f"starting task {task.name or 'main'}: {task.command}")
            proc = self._spawn(
                task.command,
                self._task_env(env, task.env),
                out / task.stdout_name,
                out / task.stderr_name,
            )
            self.running.append(Running(task, proc))
        primaries = [r for r in self.running if r.task.primary]
        reported = False
        while True:
            if not reported and all(r.process.poll() is not None for r in primaries):
                code = next((c for c in (self._code(r) for r in primaries) if c != 0), 0)
                self.run.mark_done(self.node.index, code)
                reported = True
            if self.is_master:
                self._decide_finished()
            if self.run.is_finished():
                break
            if self._should_stop():
                raise self._stop_reason()
            processes.wait_any(
                [r.process for r in self.running], timeout=0.05
            ) if self.running else time.sleep(0.02)
        for r in self.running:
            if r.process.poll() is not None:
                self.log(f"task {r.task.name or 'main'} exited with code {self._code(r)}")
        return self.run.done(self.node.index) if reported else -1  # type: ignore[return-value]

    def _decide_finished(self) -> None:
        codes = [self.run.done(n.index) for n in self.plan.nodes]
        if all(c is not None for c in codes) or any(c not in (None, 0) for c in codes):
            self.run.mark_finished()

    @staticmethod
    def _code(r: Running) -> int:
        return processes.exit_code(r.process.returncode) if r.process.returncode is not None else -1

    def _python(self, env: JobEnvironment) -> str:
        """``python`` where there is one (in the job's container if it has one), else python3."""
        if self.container is not None:
            return "python" if self.container.has_command("python") else "python3"
        path = env.variables.get("PATH", os.environ.get("PATH"))
        return "python" if shutil.which("python", path=path) else "python3"

    def _spawn(self, command: str, env: dict[str, str], stdout: Path, stderr: Path) -> Popen[bytes]:
        argv = processes.bash(command)
        if self.container is not None:
            # the job's variables and the task's own, not the host's (PATH, HOME, ...)
            names = self.container_env | (env.keys() - self._host_env().keys())
            argv = self.container.exec_argv(
                self.layout.job_temp, sorted(names), command, stdout, stderr
            )
        proc = processes.start(
            argv, env=env, cwd=self.layout.job_temp, stdout=stdout, stderr=stderr
        )
        self.run.record_task(self.node.index, proc.pid, processes.process_start_time(proc.pid))
        return proc

    def _task_env(self, env: JobEnvironment, extra: dict[str, str]) -> dict[str, str]:
        return {**self._host_env(), **env.variables, **extra}

    def _should_stop(self) -> bool:
        if self.run.stop_requested():
            self.stop_requested.set()
        return (
            self.stop_requested.is_set()
            or time.time() > self.deadline
            or (not self.is_master and self.run.is_finished() and not self.running)
        )

    def _stop_reason(self) -> JobFailure:
        if self.stop_requested.is_set():
            return JobFailure("JobTerminated", "the job was terminated by the user", 143)
        if time.time() > self.deadline:
            limit = self.plan.max_wall_clock_seconds
            return JobFailure(
                "JobWallClockTimeExceeded",
                f"the job ran longer than its maximum wall clock time ({limit:g} s)",
                143,
            )
        return JobFailure("JobEnded", "the job ended on another node")

    def _stop_tasks(self) -> None:
        if self.container is not None and any(r.process.poll() is None for r in self.running):
            # the exec clients are not the parents of what runs inside: signal it there
            clients = [r.process for r in self.running]
            self.container.stop_processes(clients, processes.GRACE_SECONDS)
        for r in self.running:
            if r.process.poll() is None:
                processes.kill_tree(r.process.pid)
                r.process.wait()
        self.running.clear()

    # -- after ----------------------------------------------------------------------------------
    def _unmount(self, mounts: list[Mount]) -> list[JobError]:
        errors = []
        sync_filesystem(self.layout.job_temp)
        for mount in reversed(mounts):
            try:
                mount.unmount()
            except OpenBaiError as exc:
                self.log(f"flushing {mount.path} failed: {exc.message}")
                errors.append(
                    JobError(
                        "OutputUploadFailed",
                        f"outputs written to {mount.spec.relative_path} could not be saved: {exc.message}",
                    )
                )
        return errors

    def _remove_node_root(self) -> None:
        try:
            remove_tree(self.layout.node_root)
        except (OSError, OpenBaiError) as exc:
            self.log(f"could not remove the node root {self.layout.node_root}: {exc}")

    def _job_outcome(self, mine: Outcome) -> Outcome:
        others = [n.index for n in self.plan.nodes[1:]]
        stopped_at: float | None = None

        def give_up() -> bool:
            """After a stop request, the other nodes (stopping too) get a while to report."""
            nonlocal stopped_at
            if not self.stop_requested.is_set():
                return False
            if stopped_at is None:
                stopped_at = time.monotonic()
            return time.monotonic() - stopped_at > _REPORT_GRACE_SECONDS

        wait_until(lambda: all(self.run.node_result(k) is not None for k in others), stop=give_up)
        outcome = Outcome(mine.exit_code, list(mine.errors), mine.start_time, time.time())
        for k in others:
            result = self.run.node_result(k)
            if result is None:
                lost = JobError(
                    "NodeLost", f"node {self.plan.nodes[k].node_id} did not report its end"
                )
                result = Outcome(-1, [lost])
            outcome.errors.extend(
                e for e in result.errors if e.code != "JobEnded" and e not in outcome.errors
            )
            if outcome.exit_code == 0 and result.exit_code not in (0, None):
                outcome.exit_code = result.exit_code
        if outcome.exit_code not in (0, None) and not outcome.errors:
            outcome.errors.append(JobError("JobFailed", "Job failed with non-zero exit code"))
        return outcome


def with_hosts(plan: JobPlan, hosts: list[str]) -> JobPlan:
    """The plan on the hosts a scheduler allocated: node ``i`` is ``hosts[i]`` (id and host)."""
    nodes = [
        NodeSpec(n.index, host, host, n.port_base)
        for n, host in zip(plan.nodes, hosts, strict=True)
    ]
    return dataclasses.replace(plan, nodes=nodes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="openbai-runner")
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--node", type=int, required=True)
    parser.add_argument("--node-root", type=Path, required=True)
    parser.add_argument("--node-state", type=Path, default=None)
    parser.add_argument("--hosts", default=None)
    parser.add_argument("--keep-env", action="append", default=[], metavar="PREFIX")
    parser.add_argument("--remove-node-root", action="store_true")
    args = parser.parse_args(argv)
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
    )
    runner.run.record_runner(args.node, os.getpid(), processes.process_start_time(os.getpid()))

    def on_signal(signum: int, frame: FrameType | None) -> None:
        runner.stop_requested.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    runner.execute()
    return 0


if __name__ == "__main__":
    sys.exit(main())

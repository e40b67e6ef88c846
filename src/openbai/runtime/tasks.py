"""The job's processes on one node: started on the host or in the job's container, with
their output going to files, recorded so that they can be stopped even if the runner dies,
watched until they end, and stopped with their whole process tree."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from subprocess import Popen
from typing import TYPE_CHECKING, NamedTuple

from openbai.runtime import processes, rank_output, unsafe_env
from openbai.runtime.cgroups import Cgroup
from openbai.runtime.environment import JobEnvironment
from openbai.runtime.node import NodeContext
from openbai.runtime.output_files import Volumes
from openbai.runtime.sandbox import Sandbox
from openbai.runtime.stopping import JobFailure, Stopping
from openbai.runtime.toolkits import Task

if TYPE_CHECKING:  # the container modules are loaded only for a job that has a container
    from openbai.runtime.job_container import JobContainer


class Running(NamedTuple):
    task: Task
    process: Popen[bytes]

    def exit_code(self) -> int:
        code = self.process.returncode
        return processes.exit_code(code) if code is not None else -1


class Piped(NamedTuple):
    """A task whose stdout and stderr are read by the runner (an MPI daemon's, relayed to
    mpirun): their read ends, non-blocking. They may stay open past the task's end (FIFOs of
    a task in the container): read what they hold once its process ended, then :meth:`close`."""

    running: Running
    stdout: int
    stderr: int
    fifos: list[Path]

    def close(self) -> None:
        for fd in (self.stdout, self.stderr):
            with contextlib.suppress(OSError):
                os.close(fd)
        for fifo in self.fifos:
            fifo.unlink(missing_ok=True)


class NodeTasks:
    def __init__(self, ctx: NodeContext, stopping: Stopping):
        self.ctx = ctx
        self.stopping = stopping
        #: the job's container on this node, once started (node_container.py)
        self.container: JobContainer | None = None
        #: the job's own variables, which are passed into its container
        self.container_env: set[str] = set()
        self.running: list[Running] = []
        #: where tasks on the host run (None: the cluster's --no-sandbox) and their limits
        self.sandbox: Sandbox | None = None
        self.cgroup: Cgroup | None = None
        #: the job's volumes, where tasks' output files are opened (never through a link)
        self.volumes: Volumes | None = None
        #: what must end before the tasks are stopped (what starts tasks: mpi_daemons.py)
        self.before_stop: list[Callable[[], None]] = []

    def should_stop(self) -> bool:
        return self.stopping.should_stop(tasks_running=bool(self.running))

    def env(self, env: JobEnvironment, extra: Mapping[str, str]) -> dict[str, str]:
        """A task's environment: the host's, the job user's, the job's variables, the task's own."""
        user = self.sandbox.user_env(self.ctx.layout.job_temp) if self.sandbox else {}
        return {**self.ctx.host_env(), **user, **env.variables, **extra}

    def python(self, env: JobEnvironment) -> str:
        """``python`` where there is one (in the job's container if it has one), else python3."""
        if self.container is not None:
            return "python" if self.container.has_command("python") else "python3"
        path = env.variables.get("PATH", os.environ.get("PATH"))
        return "python" if shutil.which("python", path=path) else "python3"

    def start(self, task: Task, env: dict[str, str], stdout: Path, stderr: Path) -> Running:
        if task.mpi:
            self._require_mpirun(env)
        out, err = self._open_output(stdout), self._open_output(stderr)
        try:
            return self._start(task, env, stdout, stderr, out, err)
        finally:
            for fd in (out, err):
                if isinstance(fd, int):
                    os.close(fd)

    def start_piped(self, task: Task, env: dict[str, str]) -> Piped:
        """Start a task whose stdout and stderr the caller reads (:class:`Piped`)."""
        if self.container is None:
            (out_r, out_w), (err_r, err_w) = os.pipe(), os.pipe()
            try:
                devnull = Path(os.devnull)
                running = self._start(task, env, devnull, devnull, out_w, err_w)
            except BaseException:
                os.close(out_r)
                os.close(err_r)
                raise
            finally:
                os.close(out_w)
                os.close(err_w)
            for fd in (out_r, err_r):
                os.set_blocking(fd, False)
            return Piped(running, out_r, err_r, [])
        # in the container the task opens its output by path: FIFOs in its working folder,
        # which the runner also holds open for writing (no end of file before the task's end)
        user = self.container.seal.user if self.container.seal else None
        tag = secrets.token_hex(8)
        fifos = [self.ctx.layout.job_temp / f".openbai-{tag}.{name}" for name in ("out", "err")]
        fds: list[int] = []
        try:
            for fifo in fifos:
                os.mkfifo(fifo, 0o600)
                # by descriptor: the folder is the job's, which may swap what lies in it
                fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
                fds.append(fd)
                if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                    raise OSError(errno.EEXIST, "not the FIFO made", str(fifo))
                if user is not None:
                    os.fchown(fd, user.uid, user.gid)
                else:  # the image's user, whoever it is, writes it
                    os.fchmod(fd, 0o666)
            devnull = Path(os.devnull)
            running = self._start(task, env, fifos[0], fifos[1], devnull, devnull)
        except BaseException:
            for fd in fds:
                os.close(fd)
            for fifo in fifos:
                fifo.unlink(missing_ok=True)
            raise
        return Piped(running, fds[0], fds[1], fifos)

    def _open_output(self, path: Path) -> Path | int:
        """An output file of a task, opened on its volume (a descriptor), or its path where
        the node has no volumes yet (a node's own command)."""
        if self.volumes is None:
            return path
        fd = self.volumes.open_append(str(path))
        user = self.container.seal.user if self.container and self.container.seal else None
        if user is not None and os.fstat(fd).st_uid != user.uid:
            # the task opens it itself, inside its container, as the job user
            os.fchown(fd, user.uid, user.gid)
        return fd

    def _start(
        self,
        task: Task,
        env: dict[str, str],
        stdout: Path,
        stderr: Path,
        out: Path | int,
        err: Path | int,
    ) -> Running:
        # the job's loader variables are held on the way through the node's root programs
        # ~/.bashrc read after the held variables are back: what it sets wins, as on Batch AI
        command = unsafe_env.restoring(env, processes.READ_BASHRC + task.command)
        held = process_env = unsafe_env.hold(env)
        argv = processes.bash(command)
        if self.container is not None:
            # the job's variables and the task's own, not the host's (PATH, HOME, ...)
            names = self.container_env | (env.keys() - self.ctx.host_env().keys())
            names = set(map(unsafe_env.held_name, names))
            argv, process_env = self.container.task_argv(
                self.ctx.layout.job_temp,
                {n: held[n] for n in names if n in held},
                command,
                stdout,
                stderr,
                held=held,
            )
        elif task.mpi:
            # the ranks' output is merged by whole lines before it reaches the files
            argv = rank_output.collector_argv(self.ctx.plan.nodes[0].host, argv)
        fds: list[int] = []
        if self.container is None and self.sandbox is not None:
            argv = self.sandbox.argv(argv, self.ctx.layout.job_temp)
            fds = self.sandbox.take_fds()
        if self.cgroup is not None and self.container is None:
            argv = self.cgroup.entered_by(argv)
        try:
            proc = processes.start(
                argv,
                env=process_env,
                cwd=self.ctx.layout.job_temp,
                stdout=out,
                stderr=err,
                pass_fds=fds,
            )
        finally:
            for fd in fds:
                os.close(fd)
        self.ctx.run.record_task(
            self.ctx.node.index, proc.pid, processes.process_start_time(proc.pid)
        )
        running = Running(task, proc)
        self.running.append(running)
        return running

    def _require_mpirun(self, env: dict[str, str]) -> None:
        """Fail the job before it starts, saying what to install, where ``mpirun`` is missing
        (bash would only say "command not found" in stderr.txt, and the job fail with 127)."""
        if self.container is not None:
            if self.container.has_command("mpirun"):
                return
            where = f"in the job's container image {self.container.image}"
            how = "install OpenMPI in the image (Debian/Ubuntu: apt-get install openmpi-bin)"
        else:
            if shutil.which("mpirun", path=env.get("PATH", "")):
                return
            where = f"on node {self.ctx.node.node_id} (in the job's PATH)"
            how = "install OpenMPI on the cluster's nodes (Debian/Ubuntu: apt-get install openmpi-bin)"
        raise JobFailure(
            "MpiNotInstalled",
            f"the job's processes are started with mpirun, which was not found {where}: {how}",
            127,
        )

    def run_to_end(self, command: str, env: dict[str, str], stdout: Path, stderr: Path) -> int:
        """Run a step before the toolkit (setup task, job preparation); its exit code."""
        proc = self.start(Task("prep", self.ctx.node.index, command), env, stdout, stderr).process
        while proc.poll() is None:
            if self.container is not None:
                self.container.check()
            if self.should_stop():
                raise self.stopping.reason()
            processes.wait_any([proc], timeout=0.05)
        self.running.clear()
        return processes.exit_code(proc.returncode)

    def wait(self) -> None:
        """Sleep until a running task ends (50 ms at most); with none left, 20 ms (the other
        nodes are being waited for)."""
        if self.container is not None:
            self.container.check()  # a container that ended ends its tasks' host processes
        alive = [r.process for r in self.running if r.process.returncode is None]
        if alive:
            processes.wait_any(alive, timeout=0.05)
        else:
            time.sleep(0.02)

    def stop(self, running: Running) -> None:
        """Stop a task's process with everything it started."""
        if running.process.poll() is None:
            from openbai.runtime import process_trees  # psutil: for early ends only

            if self.sandbox is not None and self.container is None:
                process_trees.stop_sandbox(running.process.pid)
            else:
                process_trees.kill_tree(running.process.pid)
            running.process.wait()

    def stop_all(self) -> None:
        while self.before_stop:
            self.before_stop.pop()()
        if self.container is not None and any(r.process.poll() is None for r in self.running):
            # the exec clients are not the parents of what runs inside: signal it there
            clients = [r.process for r in self.running]
            self.container.stop_processes(clients, processes.GRACE_SECONDS)
        for r in list(self.running):
            self.stop(r)
        self.running.clear()
        if self.cgroup is not None:
            self.cgroup.kill_all()  # whatever slipped out of the tasks' process trees

    def remove_container(self) -> None:
        if self.container is not None:
            self.container.remove()
            self.ctx.log(f"removed container {self.container.name}")
            self.container = None

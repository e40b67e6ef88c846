"""The nodes of a cluster or of a job, as Batch AI's remote-login information, and the
command that runs something on one of them (``node exec``).

openbai's nodes are not VMs with an SSH endpoint of their own: a local cluster's nodes are
slots on this machine, a Slurm cluster's are the partition's hosts. Each node is reported
with the host it runs on and the SSH port 22 of that host. Where Batch AI's ``node exec``
logged in over SSH, openbai runs the command as a job's task would run there: on a local
slot in the node's sandbox (its volumes, its temp folders, its GPUs, the job user), on a
Slurm host through ``srun`` (a step of the job with ``--overlap``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sqlalchemy import select

from openbai.errors import NotFoundError, OpenBaiError, SpecError
from openbai.executors.local import LocalExecutor, slot_limits
from openbai.executors.slurm import SlurmExecutor
from openbai.installation import App
from openbai.mounts.link import Anchor, embedded_folders
from openbai.plan.job_plan import MountSpec
from openbai.runtime.cgroups import Cgroup
from openbai.runtime.gpu_devices import sandboxed_indices
from openbai.runtime.inherited_env import inherited_env
from openbai.runtime.sandbox import JOB_USER
from openbai.runtime.sealing import node_sandbox
from openbai.scheduling.planning import ClusterPlanning, cluster_key, cluster_limits
from openbai.scheduling.volumes import mount_specs, mounted_volumes
from openbai.services.clusters import cluster_row
from openbai.services.gpus import node_gpus
from openbai.services.jobs import job_row
from openbai.spec import ClusterBaseProperties
from openbai.store.models import Cluster, Job
from openbai.store.specs import cluster_properties, job_properties
from openbai.vocabulary import ON_NODES

SSH_PORT = 22


@dataclass(frozen=True)
class RemoteLogin:
    node_id: str
    ip_address: str
    port: int = SSH_PORT
    #: the node's GPUs on its machine (openbai's addition); None: its scheduler assigns them
    gpus: list[int] | None = None

    def to_wire(self) -> dict[str, object]:
        wire: dict[str, object] = {
            "nodeId": self.node_id,
            "ipAddress": self.ip_address,
            "port": self.port,
        }
        if self.gpus is not None:
            wire["gpus"] = self.gpus
        return wire


def _logins(app: App, cluster: Cluster, slots: list[int]) -> list[RemoteLogin]:
    executor = app.executor(cluster.executor)
    props = cluster_properties(cluster)
    return [
        RemoteLogin(n.node_id, n.host, gpus=node_gpus(props, slot))
        for n, slot in zip(executor.node_specs(slots, cluster_key(cluster)), slots, strict=True)
    ]


def _hosts(hosts: list[str]) -> list[RemoteLogin]:
    """Slurm's hosts as nodes: each named by its host name (a Slurm job's
    ``AZ_BATCH_NODE_ID``), at the address it resolves to here."""
    return [RemoteLogin(host, _address(host)) for host in hosts]


def _address(host: str) -> str:
    try:
        return socket.gethostbyname(host)
    except OSError:  # not resolvable here: its name is what there is to reach it by
        return host


def cluster_nodes(app: App, rg: str, ws: str, name: str) -> list[RemoteLogin]:
    """Every node the cluster has now (an auto-scale cluster's grow and shrink; a Slurm
    cluster's: the hosts of its partition)."""
    with app.db.reading() as s:
        cluster = cluster_row(s, rg, ws, name)
        executor = app.executor(cluster.executor)
        if isinstance(executor, SlurmExecutor):
            partition = cluster_properties(cluster).openbai.partition
            return _hosts(sorted(executor.host_states({"partition": partition}) or {}))
        return _logins(app, cluster, list(range(cluster.current_node_count)))


def job_nodes(app: App, rg: str, ws: str, exp: str, name: str) -> list[RemoteLogin]:
    """The nodes the job runs on now (none once it has ended, as on Batch AI; on Slurm, the
    hosts Slurm allocated to it)."""
    with app.db.reading() as s:
        job = job_row(s, rg, ws, exp, name)
        if job.execution_state not in ON_NODES or job.cluster_id is None:
            return []
        cluster = s.get(Cluster, job.cluster_id)
        if cluster is None:
            return []
        executor = app.executor(cluster.executor)
        if isinstance(executor, SlurmExecutor):
            return _hosts(executor.job_hosts(_slurm_job_id(job))) if _slurm_job_id(job) else []
        return _logins(app, cluster, list(job.nodes or range(job.node_count)))


def _slurm_job_id(job: Job) -> str:
    ref = job.executor_ref or {}
    return str((ref.get("data") or {}).get("job_id") or "")


@dataclass(frozen=True)
class NodeCommand:
    """What to run, with what environment and where, to run a command on a node."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    #: descriptors the sandbox binds volume folders from: passed to it, then closed
    fds: tuple[int, ...] = ()
    #: the control group with the node slot's limits that the command runs in
    cgroup: Cgroup | None = None

    def close(self) -> None:
        """Close the descriptors (once the command has started, or failed to)."""
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    def finish(self) -> None:
        """Once the command has ended: end what it left in its group, and remove the group."""
        if self.cgroup is not None:
            self.cgroup.kill_all()
            self.cgroup.remove()


def _shell(command: str | None) -> list[str]:
    # az ran `bash -ilc CMD` over SSH; without a command, an interactive login shell
    return ["bash", "-lc", command] if command is not None else ["bash", "-il"]


def _pick(logins: list[RemoteLogin], node_id: str | None) -> int:
    """The index of the node named (the first one when none is)."""
    if not logins:
        raise NotFoundError("The cluster has no nodes now", code="NodeNotFound", target="nodeId")
    if node_id is None:
        return 0
    for i, login in enumerate(logins):
        if login.node_id == node_id:
            return i
    known = ", ".join(n.node_id for n in logins)
    raise NotFoundError(
        f"There is no node {node_id!r} (nodes: {known})", code="NodeNotFound", target="nodeId"
    )


def _local_command(
    app: App, cluster: Cluster, slot: int, login: RemoteLogin, command: str | None
) -> NodeCommand:
    executor = app.executor(cluster.executor)
    assert isinstance(executor, LocalExecutor)
    root = executor.node_root(cluster_key(cluster), slot)
    mounts, temp = root / "mounts", root / "jobs"
    for folder in (mounts, temp):
        folder.mkdir(parents=True, exist_ok=True)
    env = inherited_env(os.environ)
    env.update(
        AZ_BATCHAI_MOUNT_ROOT=str(mounts),
        AZ_BATCHAI_JOB_TEMP_DIR=str(temp),
        AZ_BATCH_NODE_ID=login.node_id,
        CUDA_VISIBLE_DEVICES=",".join(str(g) for g in login.gpus or []),
    )
    argv = _shell(command)
    props = cluster_properties(cluster)
    if not props.openbai.sandbox:
        group = _slot_group(props)
        return NodeCommand(_entered(group, argv), env, str(temp), cgroup=group)
    settings = app.settings
    sandbox = node_sandbox(
        hidden=[settings.runs_root, settings.nodes_root, settings.home],
        writable=[mounts, temp],
        env=env,
        gpus=login.gpus,
    )
    # embedded volumes are links into the installation: their folders are bound as the
    # job's own sandbox binds them, from what openbai mounted there, never by following
    # the links found on the node (a job makes links to any folder in its temp folder)
    sandbox.bind_embedded(_embedded_volumes(app, cluster, slot))
    env.update(sandbox.user_env(temp))
    shown = sandboxed_indices(login.gpus or [])
    env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in shown)
    argv = sandbox.argv(argv, temp)
    fds = tuple(sandbox.take_fds())
    try:
        group = _slot_group(props)
    except BaseException:
        NodeCommand(argv, env, str(temp), fds).close()
        raise
    return NodeCommand(_entered(group, argv), env, str(temp), fds, group)


def _slot_group(props: ClusterBaseProperties) -> Cgroup | None:
    """A control group with the limits a job's task has on a node of the cluster (None where
    none can be made, as for jobs)."""
    limits = slot_limits(cluster_limits(props.openbai), props.target_node_count)
    return Cgroup.create(f"openbai-exec-{uuid.uuid4().hex[:12]}", limits)


def _entered(group: Cgroup | None, argv: list[str]) -> list[str]:
    return group.entered_by(argv) if group is not None else argv


def _embedded_volumes(app: App, cluster: Cluster, slot: int) -> list[tuple[MountSpec, Anchor]]:
    """The embedded volumes mounted on a local node now: the cluster's, and those of the
    jobs running there; each with the folder it links to, where that is a folder still."""
    specs: list[MountSpec] = []
    planned = ClusterPlanning.of(app, cluster).mounts
    if not isinstance(planned, OpenBaiError):
        specs += planned
    with app.db.reading() as s:
        jobs = s.scalars(
            select(Job).where(
                Job.cluster_id == cluster.id,
                Job.execution_state.in_([state.value for state in ON_NODES]),
            )
        ).all()
        for job in jobs:
            if slot not in (job.nodes or range(job.node_count)):
                continue
            volumes = job_properties(job).mount_volumes
            try:
                specs += mount_specs(
                    app,
                    mounted_volumes(
                        volumes, root="AZ_BATCHAI_JOB_MOUNT_ROOT", field="properties.mountVolumes"
                    ),
                )
            except OpenBaiError:
                continue  # its volume is gone since: the job's own link leads nowhere now
    return embedded_folders(specs)


def _slurm_command(
    app: App,
    cluster: Cluster,
    login: RemoteLogin | None,
    job_id: str | None,
    command: str | None,
    run_dir: str | None = None,
) -> NodeCommand:
    """``srun`` of the command: a step of the job (``--overlap``), or of an allocation of its
    own; on the node it runs sealed off as a job's task is there (runtime/node_shell.py), not
    as the step's owner (root, for an installation run as root)."""
    executor = app.executor(cluster.executor)
    assert isinstance(executor, SlurmExecutor)
    argv = ["srun"]
    if job_id is not None:
        argv += ["--overlap", "--jobid", job_id]
    else:
        partition = cluster_properties(cluster).openbai.partition
        argv += ["--nodes", "1"] + (["--partition", partition] if partition else [])
    if login is not None:
        argv += ["--nodelist", login.node_id]  # the host's name, as Slurm knows it
    if command is None:
        argv.append("--pty")
    # srun hands its environment to the step: what a job keeps, and what srun itself needs
    env = inherited_env(os.environ, keep=("SLURM_",))
    for name in (JOB_USER, "OPENBAI_JOB_ENV"):
        if name in os.environ:
            env[name] = os.environ[name]
    if not cluster_properties(cluster).openbai.sandbox:
        return NodeCommand([*argv, *_shell(command)], env, str(Path.cwd()))
    settings = app.settings
    shell = [executor.python, "-m", "openbai.runtime.node_shell"]
    for hidden in (settings.home, settings.runs_root, executor.node_roots):
        shell += ["--hide", str(hidden)]
    if job_id is not None:
        shell += ["--job-node-roots", str(executor.node_roots)]
        if run_dir is not None:  # its plan: the embedded volumes to bind
            shell += ["--run-dir", run_dir]
    return NodeCommand([*argv, *shell, "--", *_shell(command)], env, str(Path.cwd()))


def cluster_node_command(
    app: App, rg: str, ws: str, name: str, node_id: str | None, command: str | None
) -> NodeCommand:
    """How to run ``command`` (None: a shell) on a node of the cluster (its first: None)."""
    logins = cluster_nodes(app, rg, ws, name)
    with app.db.reading() as s:
        cluster = cluster_row(s, rg, ws, name)
        if app.executor(cluster.executor).queues_jobs:
            login = logins[_pick(logins, node_id)] if node_id is not None else None
            return _slurm_command(app, cluster, login, None, command)
        index = _pick(logins, node_id)
        return _local_command(app, cluster, index, logins[index], command)


def job_node_command(
    app: App, rg: str, ws: str, exp: str, name: str, node_id: str | None, command: str | None
) -> NodeCommand:
    """How to run ``command`` on a node of a running job (its first: None)."""
    logins = job_nodes(app, rg, ws, exp, name)
    with app.db.reading() as s:
        job = job_row(s, rg, ws, exp, name)
        cluster = s.get(Cluster, job.cluster_id) if job.cluster_id is not None else None
        if not logins or cluster is None:
            raise NotFoundError(
                f"The job {name} is not running on any node", code="JobNotRunning", target=name
            )
        index = _pick(logins, node_id)
        if app.executor(cluster.executor).queues_jobs:
            slurm_id = _slurm_job_id(job)
            if not slurm_id:
                raise NotFoundError(
                    f"The job {name} has no Slurm job yet", code="JobNotRunning", target=name
                )
            # on its first node by default, not on every node of its allocation
            run_dir = (job.executor_ref or {}).get("data", {}).get("run_dir")
            return _slurm_command(app, cluster, logins[index], slurm_id, command, run_dir)
        slots = list(job.nodes or range(job.node_count))
        return _local_command(app, cluster, slots[index], logins[index], command)


#: the most of each of stdout and stderr a captured node command returns
OUTPUT_LIMIT = 1024 * 1024
#: seconds a captured node command may run: by default, and at most
DEFAULT_TIMEOUT = 300
MAX_TIMEOUT = 3600
#: the longest command line: one argument of the kernel's (MAX_ARG_STRLEN)
MAX_COMMAND = 128 * 1024


@dataclass(frozen=True)
class NodeOutput:
    """What a command run on a node without a terminal did (through ``bai serve``)."""

    exit_code: int
    stdout: bytes
    stderr: bytes
    stdout_truncated: bool
    stderr_truncated: bool
    timed_out: bool

    def to_wire(self) -> dict[str, object]:
        return {
            "exitCode": self.exit_code,
            "stdout": self.stdout.decode("utf-8", "replace"),
            "stderr": self.stderr.decode("utf-8", "replace"),
            "stdoutTruncated": self.stdout_truncated,
            "stderrTruncated": self.stderr_truncated,
            "timedOut": self.timed_out,
        }


def check_exec_request(command: object, timeout: object) -> tuple[str, int]:
    """The command and timeout of a node exec request, or ``SpecError`` naming the field."""
    if not isinstance(command, str) or not command.strip():
        raise SpecError("command: a non-empty command line is required", target="command")
    if "\x00" in command:
        raise SpecError("command must not contain NUL bytes", target="command")
    if len(command.encode("utf-8", "surrogatepass")) >= MAX_COMMAND:
        raise SpecError(f"command is longer than {MAX_COMMAND} bytes", target="command")
    try:
        command.encode("utf-8")
    except UnicodeEncodeError:
        raise SpecError(
            "command must be valid Unicode (a lone surrogate)", target="command"
        ) from None
    if timeout is None:
        return command, DEFAULT_TIMEOUT
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= MAX_TIMEOUT:
        raise SpecError(
            f"timeoutSeconds must be a whole number of seconds from 1 to {MAX_TIMEOUT}",
            target="timeoutSeconds",
        )
    return command, timeout


class _Kept:
    """The first ``limit`` bytes of a pipe, read on a thread of its own to its end."""

    def __init__(self, stream: IO[bytes], limit: int):
        self.data = bytearray()
        self.truncated = False
        self._stream, self._limit = stream, limit
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self) -> None:
        with self._stream:
            while chunk := self._stream.read1(65536):  # type: ignore[attr-defined]
                room = self._limit - len(self.data)
                self.data += chunk[: max(room, 0)]
                self.truncated = self.truncated or len(chunk) > room


def run_captured(found: NodeCommand, *, timeout: float, limit: int = OUTPUT_LIMIT) -> NodeOutput:
    """Run a node command with no terminal, keeping the first ``limit`` bytes of its stdout and
    stderr (the rest is read and dropped, so the command never blocks on a full pipe); after
    ``timeout`` seconds its whole process group is killed (a sandbox, or srun and its step)."""
    try:
        process = subprocess.Popen(
            found.argv,
            env=found.env,
            cwd=found.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            pass_fds=found.fds,
        )
    except FileNotFoundError as exc:
        found.finish()
        raise SpecError(f"{found.argv[0]} is not installed here", target="command") from exc
    finally:
        found.close()
    assert process.stdout is not None and process.stderr is not None
    out, err = _Kept(process.stdout, limit), _Kept(process.stderr, limit)
    timed_out = False
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    found.finish()  # what it left behind in its group: the pipes close with it
    for kept in (out, err):
        # a process the command left behind may hold the pipe open: stop waiting for it
        kept.reader.join(timeout=5)
    code = process.returncode
    return NodeOutput(
        code if code >= 0 else 128 - code,
        bytes(out.data),
        bytes(err.data),
        out.truncated,
        err.truncated,
        timed_out,
    )

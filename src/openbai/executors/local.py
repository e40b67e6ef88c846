"""Jobs as local processes: one node runner per node of the job, each a detached process.

A local cluster of N nodes is N slots on this machine; each slot has its own node root
(``<nodes root>/<cluster>/<slot>``), so jobs on different slots never share mount points.
Runners are forked by a warm fork server (forkserver.py), start in their own session and
survive the process that started them; their state is read back from the run directory, so
a restarted dispatcher adopts them.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openbai.executors.base import Executor, JobRef, RunState, RunStatus, SubmitRequest
from openbai.executors.forkserver import ForkServer
from openbai.executors.gpus import MachineGpus, machine_gpus
from openbai.mounts.table import remove_tree
from openbai.plan.job_plan import NodeLimits, NodeSpec
from openbai.plan.pids import pid_is_alive
from openbai.plan.results import JobError, Outcome, RunDir
from openbai.plan.runner_command import RunnerArgs
from openbai.runtime import containers, ports, process_trees
from openbai.runtime.cgroups import remove_groups
from openbai.runtime.sealing import group_prefix

#: processes a slot may have when the cluster sets no limit (a fork bomb stops there)
DEFAULT_PROCESSES = 4096


def slot_limits(limits: NodeLimits, slots: int) -> NodeLimits:
    """The cluster's limits, with what it leaves open split fairly between the slots of
    this machine: each slot its share of the memory, and of the CPUs (at least one)."""
    slots = max(1, slots)
    with open("/proc/meminfo") as f:
        total_kib = next(int(line.split()[1]) for line in f if line.startswith("MemTotal:"))
    return NodeLimits(
        cpus=limits.cpus or max(1.0, round((os.cpu_count() or 1) / slots, 2)),
        memory_bytes=limits.memory_bytes or total_kib * 1024 // slots,
        processes=limits.processes or DEFAULT_PROCESSES,
    )


class LocalExecutor(Executor):
    name = "local"
    queues_jobs = False

    def __init__(
        self,
        nodes_root: Path,
        *,
        on_exit: Callable[[], None] | None = None,
        gpus: tuple[int, ...] | None = None,
        **_: Any,
    ):
        self.nodes_root = nodes_root
        self.gpus = gpus
        self.on_exit = on_exit
        self._server: ForkServer | None = None
        self._lock = threading.Lock()
        #: runners the current fork server started that have not ended: pid -> start time
        #: (the server reports their ends, so nobody needs to look at the process table)
        self._running: dict[int, float] = {}
        #: runners that ended, as (pid, start time): a pid may be reused later
        self._ended: set[tuple[int, float]] = set()
        #: pids whose end was reported before their start was answered
        self._ended_early: set[int] = set()

    def has_container_runtime(self, configured: str | None) -> bool:
        return containers.find_runtime(configured) is not None

    def machine_gpus(self) -> MachineGpus:
        return machine_gpus(self.gpus)

    def node_specs(self, request_slots: list[int], cluster_key: str) -> list[NodeSpec]:
        return [
            NodeSpec(
                index=i,
                node_id=f"{cluster_key.rsplit('/', 1)[-1]}-{slot}",
                host="127.0.0.1",
                # the slot's own block where it is free; a job of another cluster on the
                # same slot number holds it otherwise, and the runner takes the next free
                port_base=ports.FIRST_PORT + slot * ports.PORTS_PER_BLOCK,
            )
            for i, slot in enumerate(request_slots)
        ]

    def node_root(self, cluster_key: str, slot: int) -> Path:
        return self.nodes_root / cluster_key / str(slot)

    def remove_cluster_files(self, cluster_key: str) -> None:
        """The cluster's slots' roots (job temp folders, a job's files left there, stale
        mount points), then the folders above them that are left empty."""
        root = self.nodes_root / cluster_key
        remove_tree(root)
        for folder in root.parents:
            if folder == self.nodes_root or self.nodes_root not in folder.parents:
                break
            try:
                folder.rmdir()
            except OSError:  # another cluster's
                break

    def submit(self, request: SubmitRequest) -> JobRef:
        slots = int(request.cluster_options.get("slots") or len(request.slots))
        plan = request.plan._replace(limits=slot_limits(request.plan.limits, slots))
        # read by the runners at once; a crash of this machine ends them too, so the plan
        # need not outlive one (the job's outcome is what is written durably)
        plan.write(request.run_dir / "plan.json", durable=False)
        cluster_key = request.cluster_options["cluster_key"]
        runners = []
        for index, slot in enumerate(request.slots):
            root = self.node_root(cluster_key, slot)
            root.mkdir(parents=True, exist_ok=True)
            ports_dir = str(self.nodes_root / "ports")
            argv = RunnerArgs(
                str(request.run_dir), str(index), str(root), ports_dir=ports_dir
            ).argv()
            runners.append((argv, str(request.run_dir / f"node-{index}.out")))
        started = self._fork_server().spawn(runners)
        with self._lock:
            for pid, at in started:
                if pid in self._ended_early:
                    self._ended_early.discard(pid)
                    self._ended.add((pid, at))
                else:
                    self._running[pid] = at
        return JobRef(
            self.name,
            {"run_dir": str(request.run_dir), "runners": [list(r) for r in started]},
        )

    def recover(self, run_dir: Path) -> JobRef | None:
        runners = RunDir(run_dir).runners()
        if not runners:
            return None
        listed = [list(runners[k]) for k in sorted(runners)]
        return JobRef(self.name, {"run_dir": str(run_dir), "runners": listed})

    def _fork_server(self) -> ForkServer:
        with self._lock:
            if self._server is None or not self._server.is_running():
                # runners of a server that ended are no longer reported: ask the system
                self._running.clear()
                self._server = ForkServer(on_exit=self._runner_exited)
            return self._server

    def _runner_exited(self, pid: int) -> None:
        with self._lock:
            started = self._running.pop(pid, None)
            if started is None:
                self._ended_early.add(pid)
            else:
                self._ended.add((pid, started))
        if self.on_exit is not None:
            self.on_exit()

    def _alive(self, ref: JobRef) -> list[int]:
        alive = []
        for pid, started in ref.data["runners"]:
            with self._lock:
                ended = (pid, started) in self._ended
                mine = self._running.get(pid) == started
            if not ended and (mine or pid_is_alive(pid, started)):
                alive.append(pid)
        return alive

    def _all_running(self, ref: JobRef) -> bool:
        """Whether the fork server started every runner of the job and none has ended."""
        with self._lock:
            return all(self._running.get(pid) == started for pid, started in ref.data["runners"])

    def _forget(self, ref: JobRef) -> None:
        """The job's end is known: its runners need not be remembered any longer."""
        with self._lock:
            for pid, started in ref.data["runners"]:
                self._ended.discard((pid, started))

    def status(self, ref: JobRef) -> RunStatus:
        if self._all_running(ref):
            # the first runner exits right after writing the outcome, and its end is
            # reported: until then the job runs, and its run directory need not be read
            return RunStatus(RunState.RUNNING)
        run = RunDir(Path(ref.data["run_dir"]))
        outcome = run.job_result()
        if outcome is not None:
            self._forget(ref)
            return RunStatus(RunState.FINISHED, outcome)
        if self._alive(ref):
            return RunStatus(RunState.RUNNING)
        self._forget(ref)
        outcome = run.job_result()  # the last runner may have written it just now
        if outcome is not None:
            return RunStatus(RunState.FINISHED, outcome)
        for pid, started in run.tasks():  # the runner is gone: stop what it left running
            if pid_is_alive(pid, started):
                process_trees.kill_tree(pid, grace=1.0)
        remove_groups(group_prefix(run.path.name))  # the runner could not remove them
        if run.stop_requested():  # killed by the force of a terminate it did not answer
            why = JobError(
                "JobTerminated",
                "the job was terminated by the user; its runner did not report its end (it did"
                " not stop in time and was killed)",
            )
        else:
            why = JobError(
                "NodeLost", "the job's runner on this machine ended without reporting (killed?)"
            )
        return RunStatus(RunState.FINISHED, Outcome(exit_code=-1, errors=[why]))

    def cancel(self, ref: JobRef, *, force: bool = False) -> None:
        run = RunDir(Path(ref.data["run_dir"]))
        if not run.stop_requested():
            # what the job's end says if its runners are killed before they report it; they
            # also look for it, should a signal not reach them
            run.request_stop()
        for pid in self._alive(ref):
            if force:
                process_trees.kill_tree(pid, grace=1.0)
            else:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

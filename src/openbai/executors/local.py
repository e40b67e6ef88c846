"""Jobs as local processes: one node runner per node of the job, each a detached process.

A local cluster of N nodes is N slots on this machine; each slot has its own node root
(``<nodes root>/<cluster>/<slot>``), so jobs on different slots never share mount points.
Runners start in their own session and survive the process that started them; their state
is read back from the run directory, so a restarted dispatcher adopts them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openbai.executors.base import Executor, JobRef, RunState, RunStatus, SubmitRequest
from openbai.runtime import processes
from openbai.runtime.plan import NodeSpec
from openbai.runtime.results import JobError, Outcome, RunDir

#: ports given to each slot for the job's services (TensorFlow servers, PyTorch rendezvous)
PORTS_PER_SLOT = 16
FIRST_PORT = 23000


class LocalExecutor(Executor):
    name = "local"
    queues_jobs = False

    def __init__(self, nodes_root: Path, *, on_exit: Callable[[], None] | None = None, **_: Any):
        self.nodes_root = nodes_root
        self.on_exit = on_exit
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def node_specs(self, request_slots: list[int], cluster_key: str) -> list[NodeSpec]:
        return [
            NodeSpec(
                index=i,
                node_id=f"{cluster_key.rsplit('/', 1)[-1]}-{slot}",
                host="127.0.0.1",
                port_base=FIRST_PORT + slot * PORTS_PER_SLOT,
            )
            for i, slot in enumerate(request_slots)
        ]

    def node_root(self, cluster_key: str, slot: int) -> Path:
        return self.nodes_root / cluster_key / str(slot)

    def submit(self, request: SubmitRequest) -> JobRef:
        request.plan.write(request.run_dir / "plan.json")
        cluster_key = request.cluster_options["cluster_key"]
        runners = []
        for index, slot in enumerate(request.slots):
            root = self.node_root(cluster_key, slot)
            root.mkdir(parents=True, exist_ok=True)
            with open(request.run_dir / f"node-{index}.out", "ab") as out:
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "openbai.runtime.runner",
                        "--run-dir",
                        str(request.run_dir),
                        "--node",
                        str(index),
                        "--node-root",
                        str(root),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self._watch(proc)
            runners.append([proc.pid, processes.process_start_time(proc.pid)])
        return JobRef(self.name, {"run_dir": str(request.run_dir), "runners": runners})

    def _watch(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._children[proc.pid] = proc

        def wait() -> None:
            proc.wait()
            with self._lock:
                self._children.pop(proc.pid, None)
            if self.on_exit is not None:
                self.on_exit()

        threading.Thread(target=wait, daemon=True, name=f"runner-{proc.pid}").start()

    def _alive(self, ref: JobRef) -> list[int]:
        alive = []
        for pid, started in ref.data["runners"]:
            with self._lock:
                child = self._children.get(pid)
            if child is not None and child.poll() is None:
                alive.append(pid)
            elif child is None and processes.pid_is_alive(pid, started):
                alive.append(pid)
        return alive

    def status(self, ref: JobRef) -> RunStatus:
        run = RunDir(Path(ref.data["run_dir"]))
        outcome = run.job_result()
        if outcome is not None:
            return RunStatus(RunState.FINISHED, outcome)
        if self._alive(ref):
            return RunStatus(RunState.RUNNING)
        outcome = run.job_result()  # the last runner may have written it just now
        if outcome is not None:
            return RunStatus(RunState.FINISHED, outcome)
        for pid, started in run.tasks():  # the runner is gone: stop what it left running
            if processes.pid_is_alive(pid, started):
                processes.kill_tree(pid, grace=1.0)
        lost = JobError(
            "NodeLost", "the job's runner on this machine ended without reporting (killed?)"
        )
        return RunStatus(RunState.FINISHED, Outcome(exit_code=-1, errors=[lost]))

    def cancel(self, ref: JobRef, *, force: bool = False) -> None:
        for pid in self._alive(ref):
            if force:
                processes.kill_tree(pid, grace=1.0)
            else:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

"""The dispatcher: starts queued jobs on free nodes and records how running jobs end.

One dispatcher runs per installation, guarded by a lock file: inside ``bai serve``, or as a
small background process that the CLI starts when it queues a job and that exits when no
job is queued or running. Everything it knows is in the database and in the executors'
run directories, so it can be killed and restarted at any time: it adopts running jobs
and records the outcome of those that ended meanwhile.

Scheduling: queued jobs of a local cluster run in order of priority (high, normal, low),
then of submission; a job that needs more nodes than are free waits, and smaller jobs
behind it may use the free nodes meanwhile (backfill).
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import IO

from sqlalchemy import select, update

from openbai.errors import ExecutorUnavailableError, OpenBaiError
from openbai.executors.base import JobRef, RunState, SubmitRequest
from openbai.runtime.results import Outcome
from openbai.services.app import App
from openbai.services.clusters import busy_slots
from openbai.services.clusters import properties as cluster_properties
from openbai.services.planning import build_plan, cluster_key
from openbai.store.models import Cluster, Job, utcnow

#: how long a job may be "running" without an executor handle before it counts as lost
_LOST_AFTER = timedelta(seconds=60)
#: after a termination request, how long runners get before they are killed
_TERMINATE_GRACE = timedelta(seconds=30)
_ACTIVE = ("running", "terminating")


class Dispatcher:
    def __init__(self, app: App):
        self.app = app
        self._wake = threading.Event()
        self._lock_file: IO[str] | None = None
        self._socket: socket.socket | None = None

    # -- running --------------------------------------------------------------------------------
    def try_acquire(self) -> bool:
        """Become the installation's dispatcher; False if another one is running."""
        f = open(self.app.settings.home / "dispatcher.lock", "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            return False
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self._lock_file = f
        self._listen()
        return True

    def _listen(self) -> None:
        path = self.app.settings.daemon_socket
        path.unlink(missing_ok=True)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(str(path))
        self._socket = s
        threading.Thread(target=self._receive, daemon=True, name="dispatcher-wake").start()

    def _receive(self) -> None:
        assert self._socket is not None
        while True:
            try:
                self._socket.recv(64)
            except OSError:
                return
            self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def run(
        self, *, stop: threading.Event, idle_exit: float | None = None, interval: float = 1.0
    ) -> None:
        """Dispatch until ``stop`` is set (or, with ``idle_exit``, until idle that long)."""
        idle_since = time.monotonic()
        while not stop.is_set():
            self._wake.clear()
            try:
                active = self.tick()
            except Exception as exc:  # keep dispatching; the error is in the log
                print(f"openbai dispatcher: {exc!r}", flush=True)
                active = True
            now = time.monotonic()
            if active:
                idle_since = now
            elif idle_exit is not None and now - idle_since > idle_exit:
                return
            self._wake.wait(interval)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self.app.settings.daemon_socket.unlink(missing_ok=True)
        if self._lock_file is not None:
            self._lock_file.close()

    # -- one round ------------------------------------------------------------------------------
    def tick(self) -> bool:
        """Record ended jobs, then start what can start. True while jobs are queued or running."""
        self._reconcile()
        return self._schedule()

    def has_work(self) -> bool:
        """Whether any job is queued or running (a read-only look)."""
        with self.app.db.reading() as s:
            return (
                s.scalar(
                    select(Job.id).where(Job.execution_state.in_((*_ACTIVE, "queued"))).limit(1)
                )
                is not None
            )

    def _reconcile(self) -> None:
        with self.app.db.reading() as s:
            jobs = [
                (
                    j.id,
                    j.executor_ref,
                    j.terminate_requested,
                    j.execution_changed_at,
                    j.execution_state,
                )
                for j in s.scalars(
                    select(Job).where(
                        Job.execution_state.in_((*_ACTIVE, "queued")), Job.executor_ref.is_not(None)
                    )
                )
            ]
            # claimed by a dispatcher that died before it stored the executor's handle
            orphans = list(
                s.execute(
                    select(Job.id, Job.uid, Job.execution_changed_at, Cluster.executor)
                    .join(Cluster, Job.cluster_id == Cluster.id, isouter=True)
                    .where(Job.execution_state.in_(_ACTIVE), Job.executor_ref.is_(None))
                )
            )
        for job_id, uid, changed_at, executor_name in orphans:
            recovered = None
            if executor_name is not None:
                recovered = self.app.executor(executor_name).recover(
                    self.app.settings.runs_root / uid
                )
            if recovered is not None:
                with self.app.db.session() as s:
                    job = s.get(Job, job_id)
                    if job is not None:
                        job.executor_ref = {"executor": recovered.executor, "data": recovered.data}
            elif utcnow() - changed_at > _LOST_AFTER:
                self._finish(
                    job_id,
                    Outcome(-1, []),
                    error=("NodeLost", "the job was lost while it was being started"),
                )
        unreachable: set[str] = set()
        for job_id, ref_data, terminate, changed_at, state in jobs:
            assert ref_data is not None
            ref = JobRef(ref_data["executor"], ref_data["data"])
            executor = self.app.executor(ref.executor)
            try:
                status = executor.status(ref)
            except ExecutorUnavailableError as exc:
                unreachable.add(f"{ref.executor}: {exc.message}")
                continue
            except OpenBaiError as exc:
                print(f"openbai dispatcher: status of job {job_id}: {exc.message}", flush=True)
                continue
            if status.state is RunState.FINISHED:
                assert status.outcome is not None
                self._finish(job_id, status.outcome)
            elif status.state is RunState.RUNNING and state == "queued":
                self._mark_running(job_id)
            elif terminate:
                force = state == "terminating" and utcnow() - changed_at > _TERMINATE_GRACE
                try:
                    executor.cancel(ref, force=force)
                except OpenBaiError as exc:
                    print(f"openbai dispatcher: stopping job {job_id}: {exc.message}", flush=True)
        for message in sorted(unreachable):
            print(f"openbai dispatcher: {message}", flush=True)

    def _mark_running(self, job_id: int) -> None:
        now = utcnow()
        with self.app.db.session() as s:
            s.execute(
                update(Job)
                .where(Job.id == job_id, Job.execution_state == "queued")
                .values(execution_state="running", execution_changed_at=now, start_time=now)
            )

    def _finish(
        self, job_id: int, outcome: Outcome, *, error: tuple[str, str] | None = None
    ) -> None:
        errors = [
            {"code": e.code, "message": e.message, "details": e.details or None}
            for e in outcome.errors
        ]
        if error is not None:
            errors.append({"code": error[0], "message": error[1], "details": None})
        succeeded = outcome.exit_code == 0 and not errors
        end = datetime.fromtimestamp(outcome.end_time, UTC) if outcome.end_time else utcnow()
        with self.app.db.session() as s:
            job = s.get(Job, job_id)
            if job is None or job.execution_state in ("succeeded", "failed"):
                return
            job.execution_state = "succeeded" if succeeded else "failed"
            job.execution_changed_at = utcnow()
            job.exit_code = outcome.exit_code
            job.errors = errors
            job.end_time = end
            if job.start_time is None:
                job.start_time = end

    def _schedule(self) -> bool:
        with self.app.db.reading() as s:
            queued = list(
                s.execute(
                    select(Job.id, Job.cluster_id, Job.node_count)
                    .where(Job.execution_state == "queued", Job.executor_ref.is_(None))
                    .order_by(Job.priority.desc(), Job.id)
                )
            )
            active = (
                s.scalar(select(Job.id).where(Job.execution_state.in_(_ACTIVE)).limit(1))
                is not None
            )
            waiting_in_executor = (
                s.scalar(
                    select(Job.id)
                    .where(Job.execution_state == "queued", Job.executor_ref.is_not(None))
                    .limit(1)
                )
                is not None
            )
        free: dict[int, list[int] | None] = {}
        #: clusters whose executor cannot take jobs now: their jobs wait for the next round
        unavailable: set[int] = set()
        for job_id, cluster_id, node_count in queued:
            if cluster_id is None:
                self._finish(
                    job_id,
                    Outcome(-1, []),
                    error=("ClusterNotFound", "the job's cluster was deleted"),
                )
                continue
            if cluster_id in unavailable:
                continue
            if cluster_id not in free:
                free[cluster_id] = self._free_slots(cluster_id)
            slots = free[cluster_id]
            if slots is not None and len(slots) < node_count:
                continue
            taken = None if slots is None else slots[:node_count]
            if slots is not None:
                free[cluster_id] = slots[node_count:]
            if not self._start(job_id, taken):
                unavailable.add(cluster_id)
            active = True
        return active or waiting_in_executor or bool(queued)

    def _free_slots(self, cluster_id: int) -> list[int] | None:
        """Free node slots of a cluster, or None when its executor queues jobs itself."""
        with self.app.db.reading() as s:
            cluster = s.get(Cluster, cluster_id)
            assert cluster is not None
            if self.app.executor(cluster.executor).queues_jobs:
                return None
            size = cluster_properties(cluster).target_node_count
            busy = busy_slots(s, cluster)
        return [slot for slot in range(size) if slot not in busy]

    def _start(self, job_id: int, slots: list[int] | None) -> bool:
        """Hand a job to its executor; False if the executor is unreachable (it stays queued)."""
        try:
            with self.app.db.reading() as s:
                job = s.get(Job, job_id)
                if job is None or job.execution_state != "queued":
                    return True
                cluster = s.get(Cluster, job.cluster_id)
                assert cluster is not None
                executor = self.app.executor(cluster.executor)
                key = cluster_key(cluster)
                nodes = executor.node_specs(
                    slots if slots is not None else list(range(job.node_count)), key
                )
                plan = build_plan(self.app, job, cluster, nodes)
                options = {
                    "cluster_key": key,
                    "partition": cluster_properties(cluster).openbai.partition,
                }
                priority = {0: "low", 1: "normal", 2: "high"}[job.priority]
                run_dir = self.app.settings.runs_root / job.uid
            if slots is not None and not self._claim(job_id, slots):
                return True
            run_dir.mkdir(parents=True, exist_ok=True)
            ref = executor.submit(SubmitRequest(run_dir, plan, slots or [], priority, options))
        except ExecutorUnavailableError as exc:
            if slots is None:  # not claimed: it is still queued
                print(f"openbai dispatcher: job {job_id} waits: {exc.message}", flush=True)
                return False
            self._finish(job_id, Outcome(-1, []), error=(exc.code, exc.message))
            return True
        except OpenBaiError as exc:
            self._finish(job_id, Outcome(-1, []), error=(exc.code, exc.message))
            return True
        with self.app.db.session() as s:
            job = s.get(Job, job_id)
            if job is not None:
                job.executor_ref = {"executor": ref.executor, "data": ref.data}
                terminate = job.terminate_requested
        if job is None:
            executor.cancel(ref, force=True)
        elif terminate:
            executor.cancel(ref)
        return True

    def _claim(self, job_id: int, slots: list[int]) -> bool:
        """Mark a queued job running on ``slots``; False if it is no longer queued."""
        now = utcnow()
        with self.app.db.session() as s:
            done = s.execute(
                update(Job)
                .where(Job.id == job_id, Job.execution_state == "queued")
                .values(
                    execution_state="running", execution_changed_at=now, start_time=now, nodes=slots
                )
            )
            return bool(done.rowcount)  # type: ignore[attr-defined]

"""The dispatcher: starts queued jobs on free nodes and records how running jobs end.

One dispatcher runs per installation, guarded by a lock file: inside ``bai serve``, or as a
small background process that the CLI starts when it queues a job and that exits when no
job is queued or running. Everything it knows is in the database and in the executors'
run directories, so it can be killed and restarted at any time: it adopts running jobs
and records the outcome of those that ended meanwhile.

Scheduling: queued jobs of a local cluster run in order of priority (high, normal, low),
then of submission; a job that needs more nodes than are free waits, and smaller jobs
behind it may use the free nodes meanwhile (backfill). Before that, each round moves the
cluster's allocated node count towards its scale settings (allocation.py): a resize, or an
auto-scale cluster growing for its waiting jobs and shrinking after an idle time. A file server
that its running jobs mount and that went away is started again (file_server_revival.py).

Each round works in batches, so that its cost grows with the jobs that change, not with the
queue: the jobs that can start are claimed in one write transaction, their executors' handles
stored in a second, and every end noticed in the round recorded in a third.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import math
import os
import shutil
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, joinedload

from openbai.errors import ExecutorUnavailableError, OpenBaiError
from openbai.executors.base import Executor, JobRef, RunState, SubmitRequest
from openbai.files import private_opener
from openbai.installation import PING, App
from openbai.plan.job_plan import JobPlan
from openbai.plan.results import JobError, Outcome, RunDir
from openbai.scheduling import allocation, node_setup, transitions
from openbai.scheduling.file_server_revival import FileServerRevival
from openbai.scheduling.planning import (
    ClusterPlanning,
    build_plan,
    cluster_limits,
    with_slot_gpus,
)
from openbai.spec import parse
from openbai.spec.cluster import OpenBaiClusterSettings, ScaleSettings
from openbai.store.models import Cluster, Experiment, Job, utcnow
from openbai.store.specs import cluster_properties
from openbai.vocabulary import ON_NODES, ExecutionState, Priority

log = logging.getLogger("openbai.dispatcher")

#: how long a job may be "running" without an executor handle before it counts as lost
_LOST_AFTER = timedelta(seconds=60)
#: how often a steady Slurm cluster with a setup task is looked at for new hosts (seconds)
_HOSTS_EVERY = 30.0
#: after a termination request, how long runners get before they are killed
_TERMINATE_GRACE = timedelta(seconds=30)
_QUEUED = ExecutionState.QUEUED


@dataclass(frozen=True)
class SlotPlacement:
    """openbai gives the job these node slots of its cluster (an executor such as local)."""

    slots: list[int]


@dataclass(frozen=True)
class QueuedByExecutor:
    """The executor queues the job and picks its nodes itself (Slurm)."""


Placement = SlotPlacement | QueuedByExecutor


@dataclass
class _Start:
    """A queued job picked to start, and where."""

    job_id: int
    placement: Placement
    executor: Executor
    request: SubmitRequest | None = None
    #: once submitted: the executor's handle, or the error that ends the job
    ref: JobRef | None = None
    error: JobError | None = None


def _failure(exc: OpenBaiError) -> JobError:
    return JobError(exc.code, exc.message)


@dataclass
class _Round:
    """What one round decided; written to the database in one transaction."""

    #: jobs that ended: outcome and an error of openbai's own
    ended: list[tuple[int, Outcome, JobError | None]] = field(default_factory=list)
    #: the run directories of the handed-out jobs that ended (their secrets go, see _record)
    ended_runs: list[Path] = field(default_factory=list)
    #: jobs that a queueing executor (Slurm) reports running
    running: list[int] = field(default_factory=list)
    #: handles recovered for jobs claimed by a dispatcher that died before storing them
    adopted: list[tuple[int, JobRef]] = field(default_factory=list)
    starts: list[_Start] = field(default_factory=list)
    #: claimed jobs handed out in the round before, whose handles (or errors) are stored now
    handed: dict[int, _Start] = field(default_factory=dict)
    #: clusters whose allocation changes: (cluster id, node count, allocation state)
    resized: list[tuple[int, int, str]] = field(default_factory=list)
    #: every slot-handing cluster's node count after this round
    sizes: dict[int, int] = field(default_factory=dict)
    #: running jobs not asked to stop, by cluster: (job id, the slots it holds)
    holding: dict[int, list[tuple[int, list[int]]]] = field(default_factory=dict)
    #: jobs a resize takes a node from: (job id, the cluster's nodeDeallocationOption)
    deallocated: list[tuple[int, str]] = field(default_factory=list)
    #: whether jobs are queued or running (the dispatcher keeps going)
    has_work: bool = False
    #: jobs handed to executors (running, or queued in Slurm): their ends wake the dispatcher
    watched: int = 0

    def end(self, job_id: int, outcome: Outcome, error: JobError | None = None) -> None:
        self.ended.append((job_id, outcome, error))

    @property
    def may_wait(self) -> bool:
        """Nothing changed and nothing runs that could end: the next round may wait."""
        return not (
            self.watched
            or self.ended
            or self.running
            or self.adopted
            or self.starts
            or self.handed
            or self.resized
            or self.deallocated
        )


def _sealed(plan: JobPlan, settings: OpenBaiClusterSettings, home: Path) -> JobPlan:
    """The plan with the cluster's sandbox setting and node limits (the executor fills in
    what the cluster leaves open), and the installation's ``home`` for its sandbox to hide."""
    limits = cluster_limits(settings)
    return plan._replace(sandbox=settings.sandbox, limits=limits, private=[str(home)])


#: after a round that changed nothing while no job ran, the least time before the next one
#: starts (seconds): the wake-ups of a burst of creates that cannot start (no node) are served
#: by one round, and a busy server spends its CPU on requests, not on rounds that each cost a
#: few queries. A round that has running jobs to watch never waits: their ends are served at once.
IDLE_ROUND_GAP = 0.05


class Dispatcher:
    def __init__(self, app: App):
        self.app = app
        self._wake = threading.Event()
        #: the last round that ended changed nothing and watched no job (see IDLE_ROUND_GAP;
        #: after a round that failed, the next one may wait those 50 ms too)
        self._may_wait = False
        self._lock_file: IO[str] | None = None
        self._socket: socket.socket | None = None
        #: claimed jobs handed out whose handles are stored in the next round's transaction
        self._handed: dict[int, _Start] = {}
        #: cluster id -> (spec, node count), see _size
        self._sizes: dict[int, tuple[dict[str, Any], int]] = {}
        #: cluster id -> (spec, scale settings), see _scale
        self._scales: dict[int, tuple[dict[str, Any], ScaleSettings | None]] = {}
        self._setups = node_setup.NodeSetups(app, self._seal)
        #: cluster id -> when its Slurm hosts were last looked at (see _allocate_hosts)
        self._hosts_seen: dict[int, float] = {}
        self._file_servers = FileServerRevival(app)

    # -- running --------------------------------------------------------------------------------
    def try_acquire(self) -> bool:
        """Become the installation's dispatcher; False if another one is running."""
        f = open(self.app.settings.home / "dispatcher.lock", "a+", opener=private_opener)
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
                message = self._socket.recv(64)
            except OSError:
                return
            if message != PING:  # a ping only asks whether a dispatcher listens
                self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def run(
        self, *, stop: threading.Event, idle_exit: float | None = None, interval: float = 1.0
    ) -> None:
        """Dispatch until ``stop`` is set (or, with ``idle_exit``, until idle that long)."""
        idle_since = time.monotonic()
        full = False  # the last round failed on a full disk (said once, not every second)
        while not stop.is_set():
            started = time.monotonic()
            self._wake.clear()
            if not self.app.settings.home.is_dir():
                return  # the installation was removed (its log with it): nothing to serve
            try:
                active = self.tick()
                if full:
                    log.warning("the disk has room again: dispatching goes on")
                    full = False
            except Exception as exc:  # keep dispatching; the error is in the log
                if not _disk_full(exc):
                    log.exception("a dispatcher round failed")
                elif not full:
                    log.error(
                        "the disk of %s is full (%s): no job starts or ends until there is room",
                        self.app.settings.home,
                        exc,
                    )
                    full = True
                active = True
            now = time.monotonic()
            if active:
                idle_since = now
            elif idle_exit is not None and now - idle_since > idle_exit:
                return
            self._wake.wait(interval)
            if self._may_wait:
                stop.wait(max(0.0, started + IDLE_ROUND_GAP - time.monotonic()))

    def close(self) -> None:
        self._store(list(self._handed.values()))
        self._handed = {}
        if self._socket is not None:
            self._socket.close()
            self.app.settings.daemon_socket.unlink(missing_ok=True)
        if self._lock_file is not None:
            self._lock_file.close()

    # -- one round ------------------------------------------------------------------------------
    def tick(self) -> bool:
        """Record ended jobs, then start what can start. True while jobs are queued or running."""
        self._file_servers.revive()
        found = _Round(handed=self._handed)
        self._handed = {}
        try:
            with self.app.db.reading() as s:
                busy = self._reconcile(s, found)
                self._allocate(s, found, busy)
                self._pick(s, found, busy)
        except BaseException:
            found.starts.clear()  # claim nothing that would not be handed out now
            raise
        finally:
            self._record(found)
        self._submit(found.starts)
        self._may_wait = found.may_wait
        return found.has_work

    def has_work(self) -> bool:
        """Whether any job is queued or running (a read-only look)."""
        return self.app.has_active_jobs()

    def _reconcile(self, s: Session, found: _Round) -> dict[int, set[int]]:
        """Ask the executors how handed-out jobs go; the slots still busy, by cluster."""
        rows = s.execute(
            select(
                Job.id,
                Job.uid,
                Job.executor_ref,
                Job.terminate_requested,
                Job.execution_changed_at,
                Job.execution_state,
                Job.cluster_id,
                Job.nodes,
                Cluster.executor,
            )
            .join(Cluster, Job.cluster_id == Cluster.id, isouter=True)
            .where(
                or_(
                    Job.execution_state.in_(ON_NODES),
                    (Job.execution_state == _QUEUED) & Job.executor_ref.is_not(None),
                )
            )
        ).all()
        busy: dict[int, set[int]] = {}
        unreachable: set[str] = set()
        found.watched = len(rows)
        for job_id, uid, ref_data, terminate, changed_at, state, cluster_id, nodes, kind in rows:
            found.has_work = True
            handed = found.handed.get(job_id)
            if handed is not None and handed.ref is not None:
                ref_data = {"executor": handed.ref.executor, "data": handed.ref.data}
            if ref_data is None:
                ended = handed is not None or not self._adopt(found, job_id, uid, changed_at, kind)
            else:
                ended = self._check(
                    found, job_id, ref_data, terminate, changed_at, state, unreachable
                )
            if ended:
                found.ended_runs.append(self.app.settings.runs_root / uid)
            elif state in ON_NODES and cluster_id is not None:
                busy.setdefault(cluster_id, set()).update(nodes or [])
                if state == ExecutionState.RUNNING and not terminate:
                    found.holding.setdefault(cluster_id, []).append((job_id, list(nodes or [])))
        for message in sorted(unreachable):
            log.warning("%s", message)
        return busy

    def _check(
        self,
        found: _Round,
        job_id: int,
        ref_data: dict[str, Any],
        terminate: bool,
        changed_at: datetime,
        state: str,
        unreachable: set[str],
    ) -> bool:
        """Look at one handed-out job; True if it ended."""
        ref = JobRef(ref_data["executor"], ref_data["data"])
        executor = self.app.executor(ref.executor)
        if terminate:
            # before its status: a terminate made before the handle was stored reached no
            # runner, and one that died since then ends terminated, as asked, not lost
            force = state == ExecutionState.TERMINATING and utcnow() - changed_at > _TERMINATE_GRACE
            try:
                executor.cancel(ref, force=force)
            except ExecutorUnavailableError as exc:
                unreachable.add(f"{ref.executor}: {exc.message}")
            except OpenBaiError as exc:
                log.warning("stopping job %s: %s", job_id, exc.message)
        try:
            status = executor.status(ref)
        except ExecutorUnavailableError as exc:
            unreachable.add(f"{ref.executor}: {exc.message}")
            return False
        except OpenBaiError as exc:
            log.warning("status of job %s: %s", job_id, exc.message)
            return False
        if status.state is RunState.FINISHED:
            assert status.outcome is not None
            found.end(job_id, status.outcome)
            return True
        if status.state is RunState.RUNNING and state == _QUEUED:
            found.running.append(job_id)
        return False

    def _adopt(
        self, found: _Round, job_id: int, uid: str, changed_at: datetime, kind: str | None
    ) -> bool:
        """A job claimed by a dispatcher that died before it stored the executor's handle:
        adopt it if its runners started, give it up once it is lost. True while it may run."""
        recovered = None
        if kind is not None:
            recovered = self.app.executor(kind).recover(self.app.settings.runs_root / uid)
        if recovered is not None:
            found.adopted.append((job_id, recovered))
        elif utcnow() - changed_at > _LOST_AFTER:
            lost = JobError("NodeLost", "the job was lost while it was being started")
            found.end(job_id, Outcome(-1, []), lost)
            return False
        return True

    def _record(self, found: _Round) -> None:
        """Write what a round decided, in one transaction: the handles of the round before,
        ends, then claims."""
        # no runner of an ended job is left to read its plan: the secrets in it (and a
        # registry login a lost runner left) go now, before anyone sees the job ended. The
        # first node removes them at a normal end; this covers the ends it never reached
        # (its runner lost or killed, a Slurm job that never reported or was cancelled
        # before it ran), until then kept until the job was deleted.
        for run_dir in found.ended_runs:
            RunDir(run_dir).discard_secrets()
        if not (
            found.ended
            or found.running
            or found.adopted
            or found.starts
            or found.handed
            or found.resized
            or found.deallocated
        ):
            return
        now = utcnow()
        requeued: list[str] = []
        with self.app.db.session() as s:
            for cluster_id, count, state in found.resized:
                s.execute(
                    update(Cluster)
                    .where(Cluster.id == cluster_id)
                    .values(
                        current_node_count=count, allocation_state=state, allocation_changed_at=now
                    )
                )
            for job_id, ref in found.adopted:
                transitions.store_handle(s, job_id, ref, only_if_missing=True)
            if found.running:
                transitions.mark_running(s, found.running, now)
            cancels = self._store_in(s, list(found.handed.values()), now)
            for job_id, option in found.deallocated:
                transitions.deallocate(s, job_id, option, now)
            for job_id, outcome, error in found.ended:
                if transitions.finish(s, job_id, outcome, error, now):
                    requeued.append(s.scalar(select(Job.uid).where(Job.id == job_id)) or "")
            # jobs of a queueing executor stay queued until the executor says they run
            found.starts = [
                st
                for st in found.starts
                if not isinstance(st.placement, SlotPlacement)
                or transitions.claim(s, st.job_id, st.placement.slots, now)
            ]
        _cancel(cancels)
        # a job queued again starts from a fresh run directory: its last run's results would
        # read as the new run's end
        for uid in filter(None, requeued):
            shutil.rmtree(self.app.settings.runs_root / uid, ignore_errors=True)

    # -- allocating nodes -----------------------------------------------------------------------
    def _allocate(self, s: Session, found: _Round, busy: dict[int, set[int]]) -> None:
        """Move each slot-handing cluster's node count towards its scale settings."""
        clusters = s.execute(
            select(
                Cluster.id,
                Cluster.spec,
                Cluster.executor,
                Cluster.current_node_count,
                Cluster.allocation_state,
                Cluster.allocation_changed_at,
            )
        ).all()
        queued = dict(
            s.execute(
                select(Job.cluster_id, func.sum(Job.node_count))
                .where(Job.execution_state == _QUEUED, Job.executor_ref.is_(None))
                .group_by(Job.cluster_id)
            ).all()
        )
        now = utcnow()
        for cluster_id, spec, kind, current, state, changed_at in clusters:
            if self.app.executor(kind).queues_jobs:
                self._allocate_hosts(s, found, cluster_id, spec, current, state)
                continue
            scale = self._scale(cluster_id, spec)
            slots = busy.get(cluster_id, set())
            last = changed_at
            if scale is not None and scale.auto_scale is not None and not slots:
                ended = s.scalar(select(func.max(Job.end_time)).where(Job.cluster_id == cluster_id))
                last = max(last, ended) if ended is not None else last
            demand = allocation.Demand(
                nodes=int(queued.get(cluster_id) or 0) + len(slots),
                highest_busy=max(slots) + 1 if slots else 0,
                idle_for=(now - last).total_seconds(),
            )
            change = allocation.next_allocation(
                scale, current, state, demand, self.app.settings.autoscale_idle_seconds
            )
            before = current
            if change is not None:
                found.resized.append((cluster_id, *change))
                current, state = change
            found.sizes[cluster_id] = current
            self._take_nodes_away(found, cluster_id, scale)
            if node_setup.has_setup_task(spec):
                setup = self._setups.allocated(s, cluster_id, current, before)
                # no job is given a node before its setup task succeeded
                busy.setdefault(cluster_id, set()).update(setup.not_ready)
                found.has_work = found.has_work or bool(setup.preparing) or setup.in_flight
            if allocation.keeps_dispatcher_busy(scale, current, state):
                found.has_work = True

    @staticmethod
    def _take_nodes_away(found: _Round, cluster_id: int, scale: ScaleSettings | None) -> None:
        """A manual target lowered under running jobs' slots: as the cluster's
        ``nodeDeallocationOption`` says, they are stopped and queued again (``requeue``, the
        default) or ended (``terminate``); ``waitforjobcompletion`` lets them finish."""
        manual = scale.manual if scale is not None else None
        if manual is None or manual.node_deallocation_option == "waitforjobcompletion":
            return
        for job_id, slots in found.holding.get(cluster_id, []):
            if any(slot >= manual.target_node_count for slot in slots):
                found.deallocated.append((job_id, manual.node_deallocation_option))

    def _allocate_hosts(
        self,
        s: Session,
        found: _Round,
        cluster_id: int,
        spec: dict[str, Any],
        current: int,
        state: str,
    ) -> None:
        """A cluster whose executor picks the nodes (Slurm) has its partition's hosts: it is
        resizing until each usable host has run the setup task (node_setup.py), then steady.
        A steady one is looked at again now and then, for hosts that joined the partition."""
        with_setup = node_setup.has_setup_task(spec)
        now = time.monotonic()
        if state != allocation.RESIZING and (
            not with_setup or now - self._hosts_seen.get(cluster_id, -math.inf) < _HOSTS_EVERY
        ):
            return
        self._hosts_seen[cluster_id] = now
        hosts = self._setups.hosts_allocated(s, cluster_id)
        if hosts is None:  # Slurm cannot tell now: look again next round
            found.has_work = found.has_work or state == allocation.RESIZING
            return
        preparing = bool(hosts.preparing) or hosts.in_flight
        change = (len(hosts.states), allocation.RESIZING if preparing else allocation.STEADY)
        if change != (current, state):
            found.resized.append((cluster_id, *change))
        if preparing:
            self._hosts_seen.pop(cluster_id, None)  # every round until the hosts are ready
            found.has_work = True

    def _scale(self, cluster_id: int, spec: dict[str, Any]) -> ScaleSettings | None:
        """The cluster's scale settings, its spec parsed again only when it changed."""
        known = self._scales.get(cluster_id)
        if known is None or known[0] != spec:
            wire = spec.get("scaleSettings")
            scale = None if wire is None else parse(ScaleSettings, wire, root="scaleSettings")
            known = (spec, scale)
            self._scales[cluster_id] = known
        return known[1]

    # -- starting jobs --------------------------------------------------------------------------
    def _pick(self, s: Session, found: _Round, busy: dict[int, set[int]]) -> None:
        """Pick the queued jobs that start now, with their plans; ``busy``: slots in use."""
        cluster_ids = list(
            s.scalars(
                select(Job.cluster_id)
                .where(Job.execution_state == _QUEUED, Job.executor_ref.is_(None))
                .distinct()
            )
        )
        for cluster_id in cluster_ids:
            found.has_work = True
            cluster = None if cluster_id is None else s.get(Cluster, cluster_id)
            if cluster is None:  # deleted: its queued jobs can never run
                for job_id in s.scalars(transitions.queue(cluster_id)):
                    gone = JobError("ClusterNotFound", "the job's cluster was deleted")
                    found.end(job_id, Outcome(-1, []), gone)
                continue
            size = found.sizes.get(cluster.id, cluster.current_node_count)
            picked = self._pick_on(s, cluster, busy.get(cluster.id, set()), size)
            if picked:
                self._plan(s, found, cluster, picked)

    def _pick_on(
        self, s: Session, cluster: Cluster, busy: set[int], size: int
    ) -> list[tuple[int, Placement]]:
        """The cluster's queued jobs that start now on its ``size`` allocated nodes, in queue
        order (with backfill)."""
        queue = transitions.queue(cluster.id).add_columns(Job.node_count)
        if self.app.executor(cluster.executor).queues_jobs:
            return [(job_id, QueuedByExecutor()) for job_id, _ in s.execute(queue)]
        free = [slot for slot in range(size) if slot not in busy]
        picked: list[tuple[int, Placement]] = []
        if not free:
            return picked
        # read the queue lazily: once the nodes are taken, the rest of it is not looked at
        for job_id, node_count in s.execute(queue):
            if not free:
                break
            if node_count <= len(free):
                picked.append((job_id, SlotPlacement(free[:node_count])))
                free = free[node_count:]
        return picked

    def _size(self, cluster: Cluster) -> int:
        """The most nodes the cluster may have (the slots of this machine it shares), its spec
        parsed again only when it changed."""
        known = self._sizes.get(cluster.id)
        if known is None or known[0] != cluster.spec:
            known = (cluster.spec, cluster_properties(cluster).target_node_count)
            self._sizes[cluster.id] = known
        return known[1]

    def _seal(self, plan: JobPlan, settings: OpenBaiClusterSettings) -> JobPlan:
        return _sealed(plan, settings, self.app.settings.home)

    def _plan(
        self,
        s: Session,
        found: _Round,
        cluster: Cluster,
        picked: list[tuple[int, Placement]],
    ) -> None:
        """Build the picked jobs' plans; a job whose plan fails ends with the error."""
        executor = self.app.executor(cluster.executor)
        jobs = {
            j.id: j
            for j in s.scalars(
                select(Job)
                .where(Job.id.in_([job_id for job_id, _ in picked]))
                .options(joinedload(Job.experiment).joinedload(Experiment.workspace))
            )
        }
        shared = ClusterPlanning.of(self.app, cluster)
        options = {
            "cluster_key": shared.key,
            "partition": shared.properties.openbai.partition,
            "slots": self._size(cluster),
            # a Slurm host whose setup task failed is unusable: no job runs there
            "exclude": node_setup.failed_hosts(self.app, cluster),
        }
        for job_id, placement in picked:
            job = jobs[job_id]
            slots = placement.slots if isinstance(placement, SlotPlacement) else []
            try:
                # a queueing executor's nodes are placeholders until it picks them
                nodes = executor.node_specs(
                    slots if isinstance(placement, SlotPlacement) else list(range(job.node_count)),
                    shared.key,
                )
                nodes = with_slot_gpus(shared.properties, nodes, slots)
                plan = self._seal(
                    build_plan(self.app, job, shared, nodes), shared.properties.openbai
                )
            except OpenBaiError as exc:
                found.end(job_id, Outcome(-1, []), _failure(exc))
                continue
            run_dir = self.app.settings.runs_root / job.uid
            priority = Priority.of_rank(job.priority)
            request = SubmitRequest(run_dir, plan, slots, priority, dict(options))
            found.starts.append(_Start(job_id, placement, executor, request))

    def _submit(self, starts: list[_Start]) -> None:
        """Hand the picked jobs to their executors. The handles of claimed jobs are stored
        with the next round's changes (a dispatcher that dies first is succeeded by one that
        adopts the jobs, see _adopt); a queueing executor's at once, since a queued job
        without its handle would be submitted again."""
        waiting: set[str] = set()  # queueing executors that cannot take jobs now
        for st in starts:
            if st.executor.name in waiting:
                continue
            if not self._hand_out(st):
                waiting.add(st.executor.name)
            elif isinstance(st.placement, QueuedByExecutor):
                self._store([st])
            else:
                self._handed[st.job_id] = st

    def _hand_out(self, st: _Start) -> bool:
        """Submit one job; its handle, or the error that ends it, goes into ``st``. False if
        its executor cannot take jobs now: the job (not claimed) stays queued."""
        assert st.request is not None
        try:
            st.request.run_dir.mkdir(parents=True, exist_ok=True)
            st.ref = st.executor.submit(st.request)
        except ExecutorUnavailableError as exc:
            if isinstance(st.placement, QueuedByExecutor):
                log.warning("job %s waits: %s", st.job_id, exc.message)
                # the plan the executor may have written goes: the next submit writes it again
                RunDir(st.request.run_dir).discard_secrets()
                return False
            st.error = _failure(exc)
        except OpenBaiError as exc:
            st.error = _failure(exc)
        except OSError as exc:
            if not _disk_full(exc):
                raise
            # the job's error, not a round's: it would be left claimed with no runner
            where = exc.filename or st.request.run_dir
            st.error = JobError(
                "DiskFull",
                f"no space left to start the job: writing {where} failed ({exc.strerror or exc})",
                [{"name": "path", "value": str(where)}],
            )
        if st.error is not None:  # no runner will read the plan the executor may have written
            RunDir(st.request.run_dir).discard_secrets()
        return True

    def _store(self, handed: list[_Start]) -> None:
        """Store handles (or errors) in a transaction of their own."""
        if not handed:
            return
        with self.app.db.session() as s:
            cancels = self._store_in(s, handed, utcnow())
        _cancel(cancels)

    def _store_in(
        self, s: Session, handed: list[_Start], now: datetime
    ) -> list[tuple[_Start, bool]]:
        """Store the executors' handles (or the errors that end the jobs); the jobs to stop
        after the commit, and whether by force: deleted or terminated meanwhile."""
        cancels: list[tuple[_Start, bool]] = []
        if not handed:
            return cancels
        for st in handed:
            if st.ref is None:
                assert st.error is not None
                transitions.finish(s, st.job_id, Outcome(-1, []), st.error, now)
            elif not transitions.store_handle(s, st.job_id, st.ref):
                cancels.append((st, True))
        stop = transitions.terminate_requested(s, [st.job_id for st in handed if st.ref])
        cancels.extend((st, False) for st in handed if st.ref is not None and st.job_id in stop)
        return cancels


def _disk_full(exc: BaseException) -> bool:
    """ENOSPC, or SQLite's "database or disk is full" (raised from it)."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "database or disk is full" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _cancel(cancels: list[tuple[_Start, bool]]) -> None:
    for st, force in cancels:
        assert st.ref is not None
        st.executor.cancel(st.ref, force=force)

"""The cluster's setup task, run on each node when the node is allocated to the cluster.

Batch AI ran a cluster's setup task on each node as the node joined the cluster: the node
counted as ``preparing`` until the task ended, then ``idle`` (or ``unusable`` when the task
failed), and its ``stdout-<node>.txt`` was in place before any job ran there. The dispatcher
does the same for slots: a slot just allocated gets a run of its own (a plan with no job,
``setup_only``) through the executor, and no job is given the slot until the setup task's
marker on the slot says it succeeded. Runs are found again from their run directories after
a dispatcher restart.

A Slurm cluster's nodes are its partition's hosts, there as soon as the cluster is: each
host whose marker (``slurm-nodes/<host>/setup``) is missing gets a setup run of its own, a
one-node Slurm job pinned to it (``sbatch --nodelist``); the cluster is ``resizing`` until
every usable host has run it. Slurm picks the hosts of jobs, so a job may still reach a host
whose setup run waits in Slurm's queue: its runner then runs the task first, once (the
marker's lock), as before every job. Hosts whose setup task failed are excluded from the
cluster's jobs (``--exclude``).
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy.orm import Session

from openbai.errors import ExecutorUnavailableError, OpenBaiError
from openbai.executors.base import Executor, JobRef, NodeCounts, RunState, SubmitRequest
from openbai.executors.local import LocalExecutor
from openbai.executors.slurm import SlurmExecutor, count_states
from openbai.installation import App
from openbai.plan.job_plan import JobPlan, NodeSpec
from openbai.runtime.layout import setup_dir
from openbai.runtime.preparation import (
    SETUP_FAILED,
    forget_setup,
    setup_marker,
    setup_state,
)
from openbai.scheduling.planning import ClusterPlanning, cluster_key, with_slot_gpus
from openbai.spec.cluster import OpenBaiClusterSettings
from openbai.store.models import Cluster
from openbai.store.specs import cluster_properties
from openbai.vocabulary import ProvisioningState

log = logging.getLogger("openbai.dispatcher")

#: the experiment name of a setup run (no experiment can be named so): its node temp folder
SETUP_EXPERIMENT = ".setup"


def has_setup_task(spec: dict[str, object]) -> bool:
    node_setup = spec.get("nodeSetup")
    return isinstance(node_setup, dict) and bool(node_setup.get("setupTask"))


@dataclass(frozen=True)
class SlotSetup:
    """The slots of a cluster whose setup task has not succeeded."""

    preparing: frozenset[int] = frozenset()
    unusable: frozenset[int] = frozenset()
    #: whether setup runs of the cluster are still to be reaped (the dispatcher stays)
    in_flight: bool = False

    @property
    def not_ready(self) -> frozenset[int]:
        return self.preparing | self.unusable


@dataclass(frozen=True)
class HostSetup:
    """A Slurm cluster's hosts, each with its node state as ``sinfo`` tells it, and the
    usable ones whose setup task has not succeeded."""

    states: dict[str, str]
    preparing: frozenset[str] = frozenset()
    unusable: frozenset[str] = frozenset()
    #: whether setup runs of the cluster are still to be reaped (the dispatcher stays)
    in_flight: bool = False

    def counts(self) -> NodeCounts:
        """Node counts: a host Slurm calls idle is preparing until its setup task ran, and
        unusable when the task failed."""
        states = dict(self.states)
        for host, state in states.items():
            if state == "idle" and host in self.preparing:
                states[host] = "preparing"
            elif state == "idle" and host in self.unusable:
                states[host] = "unusable"
        return count_states(states)


#: sinfo's states of a host that can run a setup run now
_USABLE = frozenset({"idle", "running"})


def _slot_dir(executor: LocalExecutor, cluster: Cluster, slot: int) -> Path:
    return setup_dir(executor.node_root(cluster_key(cluster), slot))


def _host_dir(executor: SlurmExecutor, host: str) -> Path:
    return setup_dir(executor.node_state_dir(host))


def _setup_dir(executor: Executor, cluster: Cluster, node: int | str) -> Path:
    if isinstance(node, str):
        assert isinstance(executor, SlurmExecutor)
        return _host_dir(executor, node)
    assert isinstance(executor, LocalExecutor)
    return _slot_dir(executor, cluster, node)


def _options(cluster: Cluster) -> dict[str, object]:
    return {"partition": cluster_properties(cluster).openbai.partition}


def _with_markers(executor: SlurmExecutor, cluster: Cluster, states: dict[str, str]) -> HostSetup:
    found = {host: setup_state(_host_dir(executor, host), cluster.uid) for host in states}
    return HostSetup(
        states,
        frozenset(h for h, v in found.items() if v is None and states[h] in _USABLE),
        frozenset(h for h, v in found.items() if v == SETUP_FAILED),
    )


def host_setup(app: App, cluster: Cluster) -> HostSetup | None:
    """A Slurm cluster's hosts and their setup; None when the cluster is not on Slurm or
    Slurm cannot tell now."""
    executor = app.executor(cluster.executor)
    if not isinstance(executor, SlurmExecutor):
        return None
    states = executor.host_states(_options(cluster))
    if states is None:
        return None
    if not has_setup_task(cluster.spec):
        return HostSetup(states)
    return _with_markers(executor, cluster, states)


def failed_hosts(app: App, cluster: Cluster) -> list[str]:
    """The hosts on which a Slurm cluster's setup task failed (its jobs exclude them)."""
    executor = app.executor(cluster.executor)
    if not isinstance(executor, SlurmExecutor) or not has_setup_task(cluster.spec):
        return []
    failed = executor.node_roots.glob(f"*/setup/{setup_marker(Path(), cluster.uid, SETUP_FAILED)}")
    return sorted(path.parent.parent.name for path in failed)


def setup_failures(app: App, cluster: Cluster, size: int) -> list[tuple[str, str]]:
    """(node, why) for each node of the cluster whose setup task failed (it is unusable): of
    a local cluster's first ``size`` slots by node id, of a Slurm cluster's hosts by name."""
    if not has_setup_task(cluster.spec):
        return []
    executor = app.executor(cluster.executor)
    if isinstance(executor, SlurmExecutor):
        nodes = [(host, _host_dir(executor, host)) for host in failed_hosts(app, cluster)]
    elif isinstance(executor, LocalExecutor):
        specs = executor.node_specs(list(range(size)), cluster_key(cluster))  # their node ids
        nodes = [
            (spec.node_id, _slot_dir(executor, cluster, slot)) for slot, spec in enumerate(specs)
        ]
    else:
        return []
    found = []
    for node, directory in nodes:
        try:
            why = setup_marker(directory, cluster.uid, SETUP_FAILED).read_text().strip()
        except FileNotFoundError:
            continue
        found.append((node, why or f"the cluster's setup task failed on node {node}"))
    return found


def slot_setup(app: App, cluster: Cluster, size: int) -> SlotSetup:
    """Which of the cluster's first ``size`` slots are preparing or unusable now."""
    executor = app.executor(cluster.executor)
    if not isinstance(executor, LocalExecutor) or not has_setup_task(cluster.spec):
        return SlotSetup()
    states = {
        slot: setup_state(_slot_dir(executor, cluster, slot), cluster.uid) for slot in range(size)
    }
    return SlotSetup(
        frozenset(k for k, v in states.items() if v is None),
        frozenset(k for k, v in states.items() if v == SETUP_FAILED),
    )


class NodeSetups:
    """The setup runs a dispatcher started; ``sealed`` gives a plan the cluster's sandbox
    and limits, as a job's."""

    def __init__(
        self, app: App, sealed: Callable[[JobPlan, OpenBaiClusterSettings], JobPlan]
    ) -> None:
        self.app = app
        self.sealed = sealed
        #: (cluster uid, slot or Slurm host) -> the handle of its setup run
        self._running: dict[tuple[str, int | str], JobRef] = {}

    def _run_dir(self, cluster: Cluster, node: int | str) -> Path:
        return self.app.settings.runs_root / f"setup-{cluster.uid}-{node}"

    def allocated(self, s: Session, cluster_id: int, size: int, before: int) -> SlotSetup:
        """The cluster has ``size`` nodes (``before`` last round): start the setup task on
        those that have not run it, forget it on those given back; the slots not ready."""
        cluster = s.get(Cluster, cluster_id)
        if cluster is None or cluster.provisioning_state == ProvisioningState.DELETING:
            return SlotSetup()  # a cluster being deleted starts no setup run
        executor = self.app.executor(cluster.executor)
        if not isinstance(executor, LocalExecutor) or not has_setup_task(cluster.spec):
            return SlotSetup()
        for slot in range(size, before):
            forget_setup(_slot_dir(executor, cluster, slot), cluster.uid)
        found = slot_setup(self.app, cluster, size)
        mine = {slot for uid, slot in self._running if uid == cluster.uid and isinstance(slot, int)}
        for slot in sorted(found.preparing | mine):
            key = (cluster.uid, slot)
            ref = self._running.get(key) or executor.recover(self._run_dir(cluster, slot))
            if ref is None:
                ref = self._start(executor, cluster, slot, size)
            if ref is None:
                continue
            self._running[key] = ref
            if executor.status(ref).state is RunState.FINISHED:
                self._ended(executor, cluster, slot)
        # the runner writes the marker when the task ends, then unmounts and clears the
        # slot's folders: a job given the slot before that run has ended loses its own
        running = frozenset(
            slot for uid, slot in self._running if uid == cluster.uid and isinstance(slot, int)
        )
        now = slot_setup(self.app, cluster, size)
        return replace(now, preparing=now.preparing | running, in_flight=bool(running))

    def _start(
        self, executor: LocalExecutor, cluster: Cluster, slot: int, size: int
    ) -> JobRef | None:
        run_dir = self._run_dir(cluster, slot)
        shutil.rmtree(run_dir, ignore_errors=True)
        try:
            planning = ClusterPlanning.of(self.app, cluster)
            nodes = executor.node_specs([slot], planning.key)
            plan = self.sealed(
                _plan(
                    self.app, cluster, planning, with_slot_gpus(planning.properties, nodes, [slot])
                ),
                planning.properties.openbai,
            )
            run_dir.mkdir(parents=True)
            options = {"cluster_key": planning.key, "slots": size}
            return executor.submit(SubmitRequest(run_dir, plan, [slot], cluster_options=options))
        except OpenBaiError as exc:
            log.warning("setup task of %s on slot %s: %s", cluster.name, slot, exc.message)
            self._mark_failed(executor, cluster, slot, exc.message)
            return None

    def hosts_allocated(self, s: Session, cluster_id: int) -> HostSetup | None:
        """A Slurm cluster's hosts: start the setup task on the usable ones that have not
        run it, reap the runs that ended; None when Slurm cannot tell now."""
        cluster = s.get(Cluster, cluster_id)
        if cluster is None or cluster.provisioning_state == ProvisioningState.DELETING:
            return None  # a cluster being deleted starts no setup run
        found = host_setup(self.app, cluster)
        executor = self.app.executor(cluster.executor)
        if found is None or not has_setup_task(cluster.spec):
            return found
        assert isinstance(executor, SlurmExecutor)
        mine = {h for uid, h in self._running if uid == cluster.uid and isinstance(h, str)}
        for host in sorted(found.preparing | mine):
            key = (cluster.uid, host)
            ref = self._running.get(key) or executor.recover(self._run_dir(cluster, host))
            if ref is None:
                ref = self._start_on_host(executor, cluster, host)
            if ref is None:
                continue
            self._running[key] = ref
            try:
                status = executor.status(ref)
            except ExecutorUnavailableError:
                continue
            if status.state is RunState.FINISHED:
                errors = status.outcome.errors if status.outcome is not None else []
                why = errors[0].message if errors else "the setup run ended without a result"
                self._ended(executor, cluster, host, why)
        in_flight = any(uid == cluster.uid for uid, _ in self._running)
        return replace(_with_markers(executor, cluster, found.states), in_flight=in_flight)

    def _start_on_host(self, executor: SlurmExecutor, cluster: Cluster, host: str) -> JobRef | None:
        run_dir = self._run_dir(cluster, host)
        shutil.rmtree(run_dir, ignore_errors=True)
        try:
            planning = ClusterPlanning.of(self.app, cluster)
            # a placeholder node: the runner learns its host from the allocation
            nodes = executor.node_specs([0], planning.key)
            plan = self.sealed(
                _plan(self.app, cluster, planning, nodes, name=host),
                planning.properties.openbai,
            )
            run_dir.mkdir(parents=True)
            options = {
                "cluster_key": planning.key,
                "partition": planning.properties.openbai.partition,
                "nodelist": [host],
            }
            return executor.submit(SubmitRequest(run_dir, plan, cluster_options=options))
        except ExecutorUnavailableError as exc:
            log.warning("setup task of %s on %s waits: %s", cluster.name, host, exc.message)
            return None
        except OpenBaiError as exc:
            log.warning("setup task of %s on %s: %s", cluster.name, host, exc.message)
            self._mark_failed(executor, cluster, host, exc.message)
            return None

    def _ended(
        self,
        executor: Executor,
        cluster: Cluster,
        node: int | str,
        why: str = "the setup run ended without a result",
    ) -> None:
        self._running.pop((cluster.uid, node), None)
        if setup_state(_setup_dir(executor, cluster, node), cluster.uid) is None:
            # the run ended without saying how the task went (killed): the node is unusable
            self._mark_failed(executor, cluster, node, why)
        shutil.rmtree(self._run_dir(cluster, node), ignore_errors=True)

    def _mark_failed(self, executor: Executor, cluster: Cluster, node: int | str, why: str) -> None:
        marker = setup_marker(_setup_dir(executor, cluster, node), cluster.uid, SETUP_FAILED)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(why + "\n")


def cancel_setup_runs(app: App, cluster_uid: str, executor_name: str) -> None:
    """Stop the setup runs of a cluster that was deleted: one still queued (a Slurm job
    waiting for its host) is cancelled and its run directory removed; one running is asked
    to stop (its runner ends the task), as a job is. A dispatcher that would have reaped
    them finds no cluster for them any more."""
    try:
        executor = app.executor(executor_name)
    except OpenBaiError as exc:  # an executor no longer configured: nothing of it to stop
        log.warning("setup runs of cluster %s: %s", cluster_uid, exc.message)
        return
    for run_dir in sorted(app.settings.runs_root.glob(f"setup-{cluster_uid}-*")):
        ref = executor.recover(run_dir)
        if ref is None:
            continue
        try:
            queued = executor.status(ref).state is RunState.PENDING
            executor.cancel(ref)
        except OpenBaiError as exc:
            log.warning("setup run %s of a deleted cluster: %s", run_dir.name, exc.message)
            continue
        if queued:
            shutil.rmtree(run_dir, ignore_errors=True)


def _plan(
    app: App,
    cluster: Cluster,
    planning: ClusterPlanning,
    nodes: list[NodeSpec],
    *,
    name: str | None = None,
) -> JobPlan:
    if isinstance(planning.mounts, OpenBaiError):
        raise planning.mounts
    assert planning.setup_task is not None
    ws = cluster.workspace
    return JobPlan(
        # a job's uid names the node's control group: each run its own
        job_uid=str(uuid.uuid4()),
        subscription_id=app.settings.subscription_id,
        resource_group=ws.resource_group,
        workspace=ws.name,
        experiment=SETUP_EXPERIMENT,
        job_name=name or nodes[0].node_id,
        cluster_name=cluster.name,
        cluster_uid=cluster.uid,
        output_segment="",
        tool_type="custom",
        toolkit={},
        std_out_err_path_prefix=planning.setup_task.std_out_err_path_prefix,
        nodes=nodes,
        cluster_mounts=planning.mounts,
        setup_task=planning.setup_task,
        setup_only=True,
    )

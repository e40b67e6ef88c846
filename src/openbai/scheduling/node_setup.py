"""The cluster's setup task on the nodes of a local cluster, run when a node is allocated.

Batch AI ran a cluster's setup task on each node as the node joined the cluster: the node
counted as ``preparing`` until the task ended, then ``idle`` (or ``unusable`` when the task
failed), and its ``stdout-<node>.txt`` was in place before any job ran there. The dispatcher
does the same for slots: a slot just allocated gets a run of its own (a plan with no job,
``setup_only``) through the executor, and no job is given the slot until the setup task's
marker on the slot says it succeeded. Runs are found again from their run directories after
a dispatcher restart.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy.orm import Session

from openbai.errors import OpenBaiError
from openbai.executors.base import JobRef, RunState, SubmitRequest
from openbai.executors.local import LocalExecutor
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


def _slot_dir(executor: LocalExecutor, cluster: Cluster, slot: int) -> Path:
    return setup_dir(executor.node_root(cluster_key(cluster), slot))


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
        #: (cluster uid, slot) -> the handle of its setup run
        self._running: dict[tuple[str, int], JobRef] = {}

    def _run_dir(self, cluster: Cluster, slot: int) -> Path:
        return self.app.settings.runs_root / f"setup-{cluster.uid}-{slot}"

    def allocated(self, s: Session, cluster_id: int, size: int, before: int) -> SlotSetup:
        """The cluster has ``size`` nodes (``before`` last round): start the setup task on
        those that have not run it, forget it on those given back; the slots not ready."""
        cluster = s.get(Cluster, cluster_id)
        if cluster is None:
            return SlotSetup()
        executor = self.app.executor(cluster.executor)
        if not isinstance(executor, LocalExecutor) or not has_setup_task(cluster.spec):
            return SlotSetup()
        for slot in range(size, before):
            forget_setup(_slot_dir(executor, cluster, slot), cluster.uid)
        found = slot_setup(self.app, cluster, size)
        mine = {slot for uid, slot in self._running if uid == cluster.uid}
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
        in_flight = any(uid == cluster.uid for uid, _ in self._running)
        return replace(slot_setup(self.app, cluster, size), in_flight=in_flight)

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

    def _ended(self, executor: LocalExecutor, cluster: Cluster, slot: int) -> None:
        self._running.pop((cluster.uid, slot), None)
        if setup_state(_slot_dir(executor, cluster, slot), cluster.uid) is None:
            # the run ended without saying how the task went (killed): the node is unusable
            self._mark_failed(executor, cluster, slot, "the setup run ended without a result")
        shutil.rmtree(self._run_dir(cluster, slot), ignore_errors=True)

    def _mark_failed(self, executor: LocalExecutor, cluster: Cluster, slot: int, why: str) -> None:
        marker = setup_marker(_slot_dir(executor, cluster, slot), cluster.uid, SETUP_FAILED)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(why + "\n")


def _plan(app: App, cluster: Cluster, planning: ClusterPlanning, nodes: list[NodeSpec]) -> JobPlan:
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
        job_name=nodes[0].node_id,
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

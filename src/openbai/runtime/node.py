"""What a node runner works with: the plan, its own node, where things are on it, the run
directory shared with the job's other nodes, and the execution log."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from openbai.plan.job_plan import JobPlan, NodeSpec
from openbai.plan.results import RunDir
from openbai.runtime.execution_log import ExecutionLog
from openbai.runtime.inherited_env import inherited_env
from openbai.runtime.layout import NodeLayout

#: the toolkits whose ranks mpirun starts; on other hosts it starts its daemons through
#: their node runners (mpi_agent.py)
MPI_TOOLS = frozenset({"mpi", "horovod", "chainer", "cntk", "caffe"})


class NodeContext(NamedTuple):
    plan: JobPlan
    node: NodeSpec
    layout: NodeLayout
    run: RunDir
    log: ExecutionLog
    #: prefixes of the runner's variables the job keeps besides the usual (a Slurm job's)
    keep_env: tuple[str, ...] = ()

    @classmethod
    def open(
        cls,
        plan: JobPlan,
        node_index: int,
        node_root: Path,
        run_dir: Path,
        *,
        node_state: Path | None = None,
        keep_env: tuple[str, ...] = (),
    ) -> NodeContext:
        return cls(
            plan,
            plan.nodes[node_index],
            NodeLayout.for_plan(plan, node_root, run_dir, node_state),
            RunDir(run_dir),
            ExecutionLog(run_dir / f"node-{node_index}.log", _secret_values(plan)),
            keep_env,
        )

    @property
    def is_master(self) -> bool:
        """The first node, which decides when the job's work is over and reports it."""
        return self.node.index == 0

    @property
    def multi(self) -> bool:
        return self.plan.node_count > 1

    @property
    def hosted(self) -> list[NodeSpec]:
        """The nodes whose work this node's tasks do: this one, and on the first node of a
        multi-node MPI job the job's other nodes on its host (a local cluster's slots), whose
        ranks its mpirun starts itself, beside its own: they get those nodes' GPUs and limits
        too (the other nodes' runners prepare them and wait)."""
        if not (self.is_master and self.multi and self.plan.tool_type in MPI_TOOLS):
            return [self.node]
        return [n for n in self.plan.nodes if n.host == self.node.host]

    @property
    def gpus(self) -> list[int] | None:
        """The GPUs this node's tasks see: those of the nodes it hosts; None where the
        scheduler assigns them."""
        hosted = self.hosted
        if any(n.gpus is None for n in hosted):
            return self.node.gpus
        return list(dict.fromkeys(g for n in hosted for g in n.gpus or ()))

    def host_env(self) -> dict[str, str]:
        """What the job keeps of the runner's environment (:mod:`.inherited_env`)."""
        return inherited_env(os.environ, self.keep_env)


def _secret_values(plan: JobPlan) -> list[str]:
    """The values the execution log leaves out: the job's secrets and its setup task's."""
    setup = plan.setup_task.secrets.values() if plan.setup_task is not None else ()
    return [*plan.secrets.values(), *setup]

"""What each toolkit runs, where, and under which file names (reference sections 3.2 and 8).

Pure functions: from the plan and the job's variables to a list of :class:`Task`. Every task
is a bash command line; the runner of node ``k`` starts the tasks with ``node_index == k``.

| toolkit                          | processes                                    | stdout files        |
|----------------------------------|----------------------------------------------|---------------------|
| custom                           | the command line on the first node            | stdout.txt          |
| mpi, horovod, chainer, cntk,     | mpirun of processCount ranks from the first   | stdout.txt          |
| caffe                            | node (run directly when there is one rank)    |                     |
| tensorflow                       | one process per parameter server and worker   | stdout-wk-<i>.txt,  |
|                                  |                                              | stdout-ps-<j>.txt   |
| pytorch, caffe2                  | one process per node                          | stdout-<k>.txt      |
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from openbai.plan.job_plan import NOTHING, JobPlan, NodeSpec
from openbai.runtime import rank_output
from openbai.runtime.expand import expand_known


class Task(NamedTuple):
    #: file-name suffix: "" gives stdout.txt, "wk-0" gives stdout-wk-0.txt
    name: str
    node_index: int
    command: str
    env: Mapping[str, str] = NOTHING
    #: the job ends when its primary tasks end; the others (parameter servers) are stopped then
    primary: bool = True
    #: the command is an mpirun line: it needs OpenMPI, and its ranks' output is merged by line
    mpi: bool = False

    @property
    def stdout_name(self) -> str:
        return f"stdout-{self.name}.txt" if self.name else "stdout.txt"

    @property
    def stderr_name(self) -> str:
        return f"stderr-{self.name}.txt" if self.name else "stderr.txt"


class ToolkitContext(NamedTuple):
    plan: JobPlan
    variables: Mapping[str, str]
    host_file: str
    python: str = "python"

    def arg(self, text: str | None) -> str:
        return expand_known(text or "", self.variables)

    def python_command(self, settings: Mapping[str, Any], args: str | None) -> str:
        interpreter = settings.get("pythonInterpreterPath") or self.python
        script = self.arg(settings["pythonScriptFilePath"])
        return _join(interpreter, script, self.arg(args))


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def plan_tasks(ctx: ToolkitContext) -> list[Task]:
    return _BUILDERS[ctx.plan.tool_type](ctx)


def host_file_lines(nodes: Sequence[NodeSpec], process_count: int) -> list[str]:
    """OpenMPI host file: one line per distinct host, slots spread evenly over the nodes."""
    per_node = -(-process_count // max(1, len(nodes)))
    slots: dict[str, int] = {}
    for node in nodes:
        slots[node.host] = slots.get(node.host, 0) + per_node
    return [f"{host} slots={count}" for host, count in slots.items()]


def mpirun(ctx: ToolkitContext, process_count: int, command: str) -> str:
    """Launch ``command`` as ``process_count`` ranks, each with the job's variables of its
    own node: the ranks mpirun starts itself inherit its environment (the first node's), and
    those on another host inherit their daemon's, which that node's runner started with the
    job's variables there (mpi_daemons.py). Passing them with ``-x`` would give every rank
    the first node's values, whose paths (``$AZ_BATCHAI_JOB_MOUNT_ROOT``...) are not another
    node's. Each rank starts through the relay of rank_output.py when the task runs under its
    collector (on the host).
    """
    return _join(
        "mpirun --allow-run-as-root --oversubscribe --bind-to none",
        f"-np {process_count} --hostfile {shlex.quote(ctx.host_file)}",
        rank_output.RELAY_WORDS,
        "bash -c",
        shlex.quote(command),
    )


def _process_count(ctx: ToolkitContext) -> int:
    return int(ctx.plan.toolkit.get("processCount") or ctx.plan.node_count)


def _on_master(ctx: ToolkitContext, command_for: Callable[[ToolkitContext], str]) -> list[Task]:
    """One process, or ranks through mpirun. A rank's command line is left with the job's
    variables for its own bash to expand (``$AZ_BATCHAI_JOB_MOUNT_ROOT/train.py``): with its
    own node's values, where this node's would name paths of this node."""
    count = _process_count(ctx)
    if count > 1 or ctx.plan.node_count > 1:
        rank_command = command_for(ctx._replace(variables={}))
        return [Task("", 0, mpirun(ctx, count, rank_command), mpi=True)]
    return [Task("", 0, command_for(ctx))]


def _custom(ctx: ToolkitContext) -> list[Task]:
    return [Task("", 0, ctx.plan.toolkit.get("commandLine") or "true")]


def _custom_mpi(ctx: ToolkitContext) -> list[Task]:
    command = mpirun(ctx, _process_count(ctx), ctx.plan.toolkit["commandLine"])
    return [Task("", 0, command, mpi=True)]


def _python_mpi(ctx: ToolkitContext) -> list[Task]:
    s = ctx.plan.toolkit
    return _on_master(ctx, lambda c: c.python_command(s, s.get("commandLineArgs")))


def _cntk(ctx: ToolkitContext) -> list[Task]:
    s = ctx.plan.toolkit
    if s.get("configFilePath") and not s.get("pythonScriptFilePath"):
        return _on_master(
            ctx,
            lambda c: _join(
                "cntk", f"configFile={c.arg(s['configFilePath'])}", c.arg(s.get("commandLineArgs"))
            ),
        )
    return _python_mpi(ctx)


def _caffe(ctx: ToolkitContext) -> list[Task]:
    s = ctx.plan.toolkit
    if s.get("configFilePath"):
        return _on_master(
            ctx,
            lambda c: _join(
                "caffe train",
                f"--solver={c.arg(s['configFilePath'])}",
                c.arg(s.get("commandLineArgs")),
            ),
        )
    return _python_mpi(ctx)


def _per_node(
    extra_env: Callable[[ToolkitContext, int], dict[str, str]],
) -> Callable[[ToolkitContext], list[Task]]:
    def build(ctx: ToolkitContext) -> list[Task]:
        s = ctx.plan.toolkit
        tasks = []
        for node in ctx.plan.nodes:
            env = {"AZ_BATCHAI_TASK_INDEX": str(node.index), **extra_env(ctx, node.index)}
            command = ctx.python_command(s, expand_known(s.get("commandLineArgs") or "", env))
            tasks.append(Task(str(node.index), node.index, command, env))
        return tasks

    return build


def _pytorch_env(ctx: ToolkitContext, rank: int) -> dict[str, str]:
    master = ctx.plan.nodes[0]
    return {
        "AZ_BATCHAI_PYTORCH_BACKEND": str(ctx.plan.toolkit.get("communicationBackend") or "gloo"),
        "AZ_BATCHAI_PYTORCH_INIT_METHOD": f"file://{ctx.variables['AZ_BATCHAI_SHARED_JOB_TEMP']}/pytorch_init",
        # what torch.distributed's env:// initialisation reads, for today's scripts
        "RANK": str(rank),
        "WORLD_SIZE": str(ctx.plan.node_count),
        "MASTER_ADDR": master.host,
        "MASTER_PORT": str(master.port_base + 9),
    }


def _tensorflow(ctx: ToolkitContext) -> list[Task]:
    s = ctx.plan.toolkit
    nodes = ctx.plan.nodes
    distributed = ctx.plan.node_count > 1
    ps_count = s.get("parameterServerCount")
    ps_count = int(ps_count if ps_count is not None else (1 if distributed else 0))
    worker_count = int(s.get("workerCount") or ctx.plan.node_count)
    next_port = {n.index: n.port_base for n in nodes}

    def place(i: int) -> tuple[NodeSpec, str]:
        node = nodes[i % len(nodes)]
        port = next_port[node.index]
        next_port[node.index] += 1
        return node, f"{node.host}:{port}"

    ps = [place(j) for j in range(ps_count)]
    workers = [place(i) for i in range(worker_count)]
    cluster = {"ps": [a for _, a in ps], "worker": [a for _, a in workers]}
    common = {
        "AZ_BATCHAI_PS_HOSTS": ",".join(cluster["ps"]),
        "AZ_BATCHAI_WORKER_HOSTS": ",".join(cluster["worker"]),
    }

    def task(kind: str, index: int, node: NodeSpec, args: str | None, primary: bool) -> Task:
        role = "master" if (kind == "worker" and index == 0) else kind
        env = {
            **common,
            "AZ_BATCHAI_TASK_INDEX": str(index),
            "TF_CONFIG": json.dumps(
                {"cluster": cluster, "task": {"type": role, "index": index}, "environment": "cloud"}
            ),
        }
        command = ctx.python_command(s, expand_known(args or "", {**ctx.variables, **env}))
        name = f"{'wk' if kind == 'worker' else 'ps'}-{index}"
        return Task(name, node.index, command, env, primary)

    tasks = [
        task("ps", j, node, s.get("parameterServerCommandLineArgs"), False)
        for j, (node, _) in enumerate(ps)
    ]
    for i, (node, _) in enumerate(workers):
        args = (
            s.get("masterCommandLineArgs")
            if i == 0 and s.get("masterCommandLineArgs") is not None
            else s.get("workerCommandLineArgs")
        )
        tasks.append(task("worker", i, node, args, True))
    return tasks


_BUILDERS: dict[str, Callable[[ToolkitContext], list[Task]]] = {
    "caffe": _caffe,
    "caffe2": _per_node(lambda ctx, k: {}),
    "chainer": _python_mpi,
    "cntk": _cntk,
    "custom": _custom,
    "horovod": _python_mpi,
    "mpi": _custom_mpi,
    "pytorch": _per_node(_pytorch_env),
    "tensorflow": _tensorflow,
}

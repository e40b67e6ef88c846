"""A cluster's GPUs, worked out when it is created or resized.

How many GPUs a node gets: ``properties.openbai.gpusPerNode`` if given, else the ``vmSize``'s
(Batch AI's table, spec.cluster.VM_SIZE_GPUS). A machine without any GPU runs GPU VM sizes as
nodes without GPUs (Batch AI's samples all name STANDARD_NC6, and should run anywhere); asking
for GPUs by number there, or for more than a machine or a Slurm host has, is refused with the
count found.

A local cluster's slots get GPUs of this machine that no other cluster holds (unless the
cluster was created with ``shareGpus``), recorded in ``properties.openbai.gpus``: slot k gets
the k-th slice of ``gpusPerNode``, so the slots' sets are disjoint and stay the same for
every job. A Slurm cluster asks Slurm for ``--gres=gpu:N`` per node instead.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openbai.errors import SpecError
from openbai.installation import App
from openbai.spec import ClusterBaseProperties, parse
from openbai.spec.cluster import slot_gpus, vm_size_gpus
from openbai.store.models import Cluster
from openbai.store.specs import cluster_properties

FIELD = "properties.openbai.gpusPerNode"


def with_gpus(
    app: App, s: Session, props: ClusterBaseProperties, *, cluster_id: int | None = None
) -> ClusterBaseProperties:
    """``props`` with ``gpusPerNode`` (and a local cluster's ``gpus``) filled in, or refused.

    ``cluster_id``: the cluster being resized, whose own GPUs stay its own."""
    ext = props.openbai
    asked = ext.gpus_per_node
    executor = app.executor(ext.executor)
    machine = executor.machine_gpus()
    if machine is None:
        per_node = _per_host(asked, props.vm_size, executor.host_gpus(_options(props)))
        return _set(props, gpusPerNode=per_node, gpus=None)
    if asked is None:
        asked = vm_size_gpus(props.vm_size) if machine.indices else 0
    nodes = props.target_node_count
    needed = asked * nodes
    mine = list(ext.gpus or []) if cluster_id is not None else []
    if ext.gpus is not None and cluster_id is None:  # named in the cluster.json
        unknown = sorted(set(ext.gpus) - set(machine.indices))
        if unknown:
            raise SpecError(
                f"properties.openbai.gpus: GPU(s) {unknown} are not among this machine's "
                f"{list(machine.indices)} ({machine.source})",
                target="properties.openbai.gpus",
            )
        mine = list(ext.gpus)
    held = set() if ext.share_gpus else _held(s, exclude=cluster_id) & set(machine.indices)
    free = [g for g in machine.indices if g not in held and g not in mine]
    usable = [g for g in mine if g not in held] + free
    if needed > len(usable):
        where = f"{len(machine.indices)} GPU(s) ({machine.source})"
        if held:
            where += f", {len(held)} of them held by other clusters"
        raise SpecError(
            f"{FIELD}: the cluster asks for {asked} GPU(s) on each of its {nodes} node(s), "
            f"{needed} in all, but this machine has {where}; give fewer nodes, "
            "--gpus-per-node 0, or OPENBAI_GPUS",
            target=FIELD,
        )
    return _set(props, gpusPerNode=asked, gpus=usable[:needed])


def _per_host(asked: int | None, vm_size: str, hosts: dict[str, int] | None) -> int:
    """GPUs per node of a cluster whose scheduler assigns them (Slurm)."""
    most = max(hosts.values(), default=0) if hosts is not None else None
    if asked is None:
        asked = vm_size_gpus(vm_size) if most != 0 else 0
    if most is not None and asked > most:
        raise SpecError(
            f"{FIELD}: the cluster asks for {asked} GPU(s) per node, but no host of its "
            f"partition has more than {most} (Slurm's GRES)",
            target=FIELD,
        )
    return asked


def _options(props: ClusterBaseProperties) -> dict[str, Any]:
    return {"partition": props.openbai.partition}


def _held(s: Session, *, exclude: int | None) -> set[int]:
    """GPUs of this machine that local clusters hold (those sharing theirs hold none)."""
    held: set[int] = set()
    for row in s.scalars(select(Cluster).where(Cluster.executor == "local")):
        if row.id == exclude:
            continue
        ext = cluster_properties(row).openbai
        if not ext.share_gpus:
            held.update(ext.gpus or [])
    return held


def _set(props: ClusterBaseProperties, **values: Any) -> ClusterBaseProperties:
    wire = props.to_wire()
    ext = wire.setdefault("openbai", {})
    for key, value in values.items():
        if value is None:
            ext.pop(key, None)
        else:
            ext[key] = value
    return parse(ClusterBaseProperties, wire, root="properties")


def node_gpus(props: ClusterBaseProperties, slot: int) -> list[int] | None:
    """The GPUs of a node slot; None when a scheduler assigns them at run time (Slurm)."""
    if props.openbai.executor != "local":
        return None
    return slot_gpus(props.openbai, slot)


def gpu_count(app: App, props: ClusterBaseProperties) -> int:
    """All GPUs of the cluster's nodes: its slots', or its Slurm hosts' by their GRES."""
    if props.openbai.executor == "local":
        return len(props.openbai.gpus or [])
    hosts = app.executor(props.openbai.executor).host_gpus(_options(props))
    return sum(hosts.values()) if hosts else 0

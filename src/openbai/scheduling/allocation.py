"""How many nodes a cluster whose slots openbai hands out (local) has, and when it changes.

Batch AI allocated a cluster's nodes in the background: a new or resized cluster showed
``allocationState: resizing`` until its nodes were there, then ``steady``. An auto-scale
cluster grew towards ``maximumNodeCount`` while jobs waited for nodes and shrank to
``minimumNodeCount`` once its nodes had been idle for a while; a maximum lowered under it
gives back the nodes above it as their jobs end, ``resizing`` until then. The dispatcher does
the same with slots each round: :func:`next_allocation` says what the cluster has after the
round.
"""

from __future__ import annotations

from dataclasses import dataclass

from openbai.spec.cluster import ScaleSettings

RESIZING = "resizing"
STEADY = "steady"


@dataclass(frozen=True)
class Demand:
    """What a cluster's jobs need now."""

    #: nodes of its queued jobs and of its running jobs, together
    nodes: int
    #: one past the highest slot a running job holds (0: none): slots below stay allocated
    highest_busy: int
    #: seconds since the cluster last changed size or a job on it ended
    idle_for: float


def target(scale: ScaleSettings | None, current: int, demand: Demand, idle_seconds: float) -> int:
    """The node count the cluster should have after this round."""
    if scale is None:
        return max(0, demand.highest_busy)
    if scale.manual is not None:
        # slots above a lowered target are given back once their jobs end
        return max(scale.manual.target_node_count, demand.highest_busy)
    auto = scale.auto_scale
    assert auto is not None, "validated: manual or autoScale"
    wanted = min(auto.maximum_node_count, max(auto.minimum_node_count, demand.nodes))
    if wanted >= current:
        return wanted
    if demand.idle_for < idle_seconds:
        # nodes above a lowered maximum wait for no idle time, only for their jobs to end
        return min(current, max(auto.maximum_node_count, demand.highest_busy))
    return max(wanted, demand.highest_busy)


def next_allocation(
    scale: ScaleSettings | None,
    current: int,
    state: str,
    demand: Demand,
    idle_seconds: float,
) -> tuple[int, str] | None:
    """The cluster's (node count, allocation state) after this round, or None if unchanged.

    A change of size shows ``resizing`` for the round it happens in; the round after (the
    new nodes are in use by then) it is ``steady`` again, unless slots above a lowered
    manual target or auto-scale maximum are still busy."""
    new = target(scale, current, demand, idle_seconds)
    new_state = RESIZING if new != current or new > _ceiling(scale, new) else STEADY
    if (new, new_state) == (current, state):
        return None
    return new, new_state


def _ceiling(scale: ScaleSettings | None, current: int) -> int:
    """The most nodes the cluster's settings let it keep (``current`` when they say none)."""
    if scale is not None and scale.manual is not None:
        return scale.manual.target_node_count
    if scale is not None and scale.auto_scale is not None:
        return scale.auto_scale.maximum_node_count
    return current


def keeps_dispatcher_busy(scale: ScaleSettings | None, current: int, state: str) -> bool:
    """Whether the background dispatcher must stay to finish a resize or shrink the cluster."""
    if state == RESIZING:
        return True
    auto = scale.auto_scale if scale is not None else None
    return auto is not None and current > auto.minimum_node_count

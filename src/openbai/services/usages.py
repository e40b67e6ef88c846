"""What an installation uses in a location, as Batch AI's usages (clusters and their nodes)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from openbai.installation import App
from openbai.store.models import Cluster, Workspace
from openbai.store.specs import cluster_properties

#: openbai sets no quota; the limits reported are Batch AI's own defaults
CLUSTER_LIMIT = 200
NODE_LIMIT = 2000


@dataclass(frozen=True)
class Usage:
    name: str
    current: int
    limit: int

    def to_wire(self) -> dict[str, object]:
        return {
            "unit": "Count",
            "currentValue": self.current,
            "limit": self.limit,
            "name": {"value": self.name, "localizedValue": self.name},
        }


def usages(app: App, location: str) -> list[Usage]:
    with app.db.reading() as s:
        clusters = list(
            s.scalars(select(Cluster).join(Workspace).where(Workspace.location == location))
        )
        nodes = sum(cluster_properties(c).target_node_count for c in clusters)
    return [
        Usage("Clusters", len(clusters), CLUSTER_LIMIT),
        Usage("Cluster Nodes", nodes, NODE_LIMIT),
    ]

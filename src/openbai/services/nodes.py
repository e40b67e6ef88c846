"""The nodes of a cluster or of a job, as Batch AI's remote-login information.

openbai's nodes are not VMs with an SSH endpoint of their own: a local cluster's nodes are
slots on this machine, a Slurm cluster's are the partition's hosts. Each node is reported
with the host it runs on and the SSH port 22 of that host.
"""

from __future__ import annotations

from dataclasses import dataclass

from openbai.installation import App
from openbai.scheduling.planning import cluster_key
from openbai.services.clusters import cluster_row
from openbai.services.gpus import node_gpus
from openbai.services.jobs import job_row
from openbai.store.models import Cluster
from openbai.store.specs import cluster_properties
from openbai.vocabulary import ON_NODES

SSH_PORT = 22


@dataclass(frozen=True)
class RemoteLogin:
    node_id: str
    ip_address: str
    port: int = SSH_PORT
    #: the node's GPUs on its machine (openbai's addition); None: its scheduler assigns them
    gpus: list[int] | None = None

    def to_wire(self) -> dict[str, object]:
        wire: dict[str, object] = {
            "nodeId": self.node_id,
            "ipAddress": self.ip_address,
            "port": self.port,
        }
        if self.gpus is not None:
            wire["gpus"] = self.gpus
        return wire


def _logins(app: App, cluster: Cluster, slots: list[int]) -> list[RemoteLogin]:
    executor = app.executor(cluster.executor)
    props = cluster_properties(cluster)
    return [
        RemoteLogin(n.node_id, n.host, gpus=node_gpus(props, slot))
        for n, slot in zip(executor.node_specs(slots, cluster_key(cluster)), slots, strict=True)
    ]


def cluster_nodes(app: App, rg: str, ws: str, name: str) -> list[RemoteLogin]:
    """Every node the cluster has now (an auto-scale cluster's grow and shrink)."""
    with app.db.reading() as s:
        cluster = cluster_row(s, rg, ws, name)
        if app.executor(cluster.executor).queues_jobs:
            size = cluster_properties(cluster).target_node_count
        else:
            size = cluster.current_node_count
        return _logins(app, cluster, list(range(size)))


def job_nodes(app: App, rg: str, ws: str, exp: str, name: str) -> list[RemoteLogin]:
    """The nodes the job runs on now (none once it has ended, as on Batch AI)."""
    with app.db.reading() as s:
        job = job_row(s, rg, ws, exp, name)
        if job.execution_state not in ON_NODES or job.cluster_id is None:
            return []
        cluster = s.get(Cluster, job.cluster_id)
        if cluster is None:
            return []
        return _logins(app, cluster, list(job.nodes or range(job.node_count)))

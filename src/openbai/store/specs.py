"""A stored cluster's or job's spec, parsed, with its secret values put back: the store keeps
specs without secrets (what every view shows) and the secrets sealed apart."""

from __future__ import annotations

from typing import Any

from openbai.spec import ClusterBaseProperties, JobBaseProperties, parse
from openbai.store.models import Cluster, Job


def cluster_properties(row: Cluster) -> ClusterBaseProperties:
    """The cluster's spec with the setup task's secret values put back (stored apart)."""
    spec: dict[str, Any] = dict(row.spec)
    task = (spec.get("nodeSetup") or {}).get("setupTask")
    if task is not None:
        task = {
            **task,
            "secrets": [{"name": k, "value": v} for k, v in (row.secrets or {}).items()],
        }
        spec["nodeSetup"] = {**spec["nodeSetup"], "setupTask": task}
    return parse(ClusterBaseProperties, spec, stored=True)


def job_properties(job: Job) -> JobBaseProperties:
    """The job's spec with its secret values put back (they are stored apart)."""
    spec: dict[str, Any] = dict(job.spec)
    spec["secrets"] = [{"name": k, "value": v} for k, v in job.secrets.get("env", {}).items()]
    password = job.secrets.get("registryPassword")
    if password is not None:
        spec["containerSettings"]["imageSourceRegistry"]["credentials"]["password"] = password
    return parse(JobBaseProperties, spec, stored=True)

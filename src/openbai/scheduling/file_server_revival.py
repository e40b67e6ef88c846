"""File servers that running jobs mount, started again by the dispatcher when they went away.

A job's mount reconnects by itself once its server answers again, and its calls wait for it
meanwhile (storage/nfs_raw.py): a ganesha that died is back before they give up (30 s), so
the job's writes are not lost. Nothing else would start it in time: planning a job,
``bai file-server show`` and listing start a server only when asked.

Looked at once a second at most: one query for the running jobs, each job's and cluster's
spec read once, then a look at each server's pid. A server that cannot be started (its port
taken) is tried again every ``_RETRY_FAILED`` seconds, and said once in the log.
"""

from __future__ import annotations

import logging
import math
import time

from sqlalchemy import select

from openbai.errors import OpenBaiError
from openbai.installation import App
from openbai.scheduling.volumes import FileServerKey, file_servers_of, running_file_server
from openbai.storage.nfs_server import NfsServer, file_server_dir
from openbai.store.models import Cluster, Job
from openbai.vocabulary import ON_NODES

log = logging.getLogger("openbai.dispatcher")

#: seconds between two looks at the servers
_EVERY = 1.0
#: seconds before a server that could not be started is tried again
_RETRY_FAILED = 30.0


class FileServerRevival:
    """The dispatcher's watch over the file servers of its running jobs."""

    def __init__(self, app: App):
        self.app = app
        self._last = -math.inf
        #: job id -> the file servers it and its cluster mount (specs do not change)
        self._jobs: dict[int, frozenset[FileServerKey]] = {}
        self._clusters: dict[int, frozenset[FileServerKey]] = {}
        #: servers that failed to start -> when they may be tried again
        self._failed: dict[FileServerKey, float] = {}

    def revive(self) -> None:
        now = time.monotonic()
        if now - self._last < _EVERY:
            return
        self._last = now
        for server in sorted(self._mounted()):
            if now < self._failed.get(server, -math.inf):
                continue
            nfs = NfsServer(file_server_dir(self.app.settings.home, *server))
            # no state: deleted (its state goes with it), and never started again
            if nfs.state() is None or nfs.is_running():
                self._failed.pop(server, None)
                continue
            self._start(server, now)

    def _start(self, server: FileServerKey, now: float) -> None:
        rg, ws, name = server
        try:
            running_file_server(self.app, rg, ws, name)
        except OpenBaiError as exc:
            if server not in self._failed:
                log.warning("file server %s/%s/%s went away: %s", rg, ws, name, exc.message)
            self._failed[server] = now + _RETRY_FAILED
            return
        self._failed.pop(server, None)
        log.info("file server %s/%s/%s went away while jobs mount it: started again", *server)

    def _mounted(self) -> set[FileServerKey]:
        """The file servers the running jobs (and their clusters) mount."""
        with self.app.db.reading() as s:
            rows = s.execute(
                select(Job.id, Job.cluster_id).where(Job.execution_state.in_(ON_NODES))
            ).all()
            new_jobs = [job_id for job_id, _ in rows if job_id not in self._jobs]
            if new_jobs:
                for job_id, spec in s.execute(select(Job.id, Job.spec).where(Job.id.in_(new_jobs))):
                    self._jobs[job_id] = file_servers_of(spec.get("mountVolumes"))
            new_clusters = {c for _, c in rows if c is not None and c not in self._clusters}
            if new_clusters:
                query = select(Cluster.id, Cluster.spec).where(Cluster.id.in_(new_clusters))
                for cluster_id, spec in s.execute(query):
                    setup = spec.get("nodeSetup") or {}
                    self._clusters[cluster_id] = file_servers_of(setup.get("mountVolumes"))
        running = {job_id for job_id, _ in rows}
        self._jobs = {job_id: found for job_id, found in self._jobs.items() if job_id in running}
        clusters = {cluster_id for _, cluster_id in rows}
        self._clusters = {c: found for c, found in self._clusters.items() if c in clusters}
        mounted: set[FileServerKey] = set()
        for job_id, cluster_id in rows:
            mounted |= self._jobs.get(job_id, frozenset())
            mounted |= self._clusters.get(cluster_id, frozenset()) if cluster_id else frozenset()
        return mounted

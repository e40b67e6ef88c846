"""What the CLI asks of openbai, answered in-process (embedded) or by a server (``--server``).

Both clients return the REST API's JSON shapes, so every command prints the same thing
whichever way it went.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openbai.http.views import (
    cluster_view,
    experiment_view,
    file_server_view,
    job_view,
    workspace_view,
)
from openbai.installation import KEEP_INTERVAL, dispatcher_answers, ensure_dispatcher
from openbai.services.quick_reads import QuickReader
from openbai.settings import Settings
from openbai.spec.times import iso
from openbai.storage.base import StorageBackend, VolumeKind

if TYPE_CHECKING:  # the services (SQLAlchemy, pydantic) load in the methods that use them
    from openbai.installation import App
    from openbai.services.deletions import Deletion
    from openbai.services.output_listing import OutputFile


class EmbeddedClient:
    """openbai in this process: the local database, storage and dispatcher.

    Reads of workspaces, experiments and jobs go through a :class:`QuickReader` (stdlib
    ``sqlite3``) until something needs the whole installation: a command that only reads
    then never imports SQLAlchemy, pydantic or the executors (see "Why the CLI is fast").
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self._app: App | None = None
        self._kept_at: float | None = None

    @property
    def app(self) -> App:
        if self._app is None:
            from openbai.installation import App

            self._app = App.open(self.settings)
        # every command, reads too (and each poll of `job wait`), revives a dead dispatcher
        self._app.keep_dispatcher()
        return self._app

    def _reader(self) -> QuickReader | None:
        """The ORM-free reader, after the same dispatcher check as :meth:`App.keep_dispatcher`
        (None: the database is not a SQLite file yet, or the App is open anyway)."""
        reader = None if self._app is not None else QuickReader.of(self.settings)
        if reader is None:
            return None
        now = time.monotonic()
        if self._kept_at is None or now - self._kept_at >= KEEP_INTERVAL:
            self._kept_at = now
            if not dispatcher_answers(self.settings):
                active = reader.has_active_jobs()
                if active is None:  # a schema it cannot read: the App checks and migrates
                    return None
                if active:
                    ensure_dispatcher(self.settings)
        return reader

    @property
    def default_resource_group(self) -> str:
        return self.settings.resource_group

    @property
    def subscription_id(self) -> str:
        return self.settings.subscription_id

    # workspaces and experiments
    def create_workspace(
        self, rg: str, name: str, location: str | None, tags: Mapping[str, str]
    ) -> dict[str, Any]:
        from openbai.services import workspaces

        return workspace_view(
            self.app.settings,
            workspaces.create_workspace(
                self.app,
                rg,
                name,
                {"location": location or self.settings.location, "tags": dict(tags)},
            ),
        )

    def get_workspace(self, rg: str, name: str) -> dict[str, Any]:
        reader = self._reader()
        quick = reader.get_workspace(rg, name) if reader else None
        if quick:
            return workspace_view(self.settings, quick)
        from openbai.services import workspaces

        return workspace_view(self.app.settings, workspaces.get_workspace(self.app, rg, name))

    def list_workspaces(self, rg: str | None) -> list[dict[str, Any]]:
        reader = self._reader()
        quick = reader.list_workspaces(rg) if reader else None
        if quick is not None:
            return [workspace_view(self.settings, r) for r in quick]
        from openbai.services import workspaces

        return [
            workspace_view(self.app.settings, r) for r in workspaces.list_workspaces(self.app, rg)
        ]

    def delete_workspace(self, rg: str, name: str, *, wait: bool = True) -> None:
        from openbai.services import deletions

        self._delete(deletions.begin(self.app, "workspace", rg, "", name), wait=wait)

    def create_experiment(self, rg: str, ws: str, name: str) -> dict[str, Any]:
        from openbai.services import workspaces

        return experiment_view(
            self.app.settings, workspaces.create_experiment(self.app, rg, ws, name)
        )

    def get_experiment(self, rg: str, ws: str, name: str) -> dict[str, Any]:
        reader = self._reader()
        quick = reader.get_experiment(rg, ws, name) if reader else None
        if quick:
            return experiment_view(self.settings, quick)
        from openbai.services import workspaces

        return experiment_view(self.app.settings, workspaces.get_experiment(self.app, rg, ws, name))

    def list_experiments(self, rg: str, ws: str) -> list[dict[str, Any]]:
        reader = self._reader()
        quick = reader.list_experiments(rg, ws) if reader else None
        if quick is not None:
            return [experiment_view(self.settings, r) for r in quick]
        from openbai.services import workspaces

        return [
            experiment_view(self.app.settings, r)
            for r in workspaces.list_experiments(self.app, rg, ws)
        ]

    def delete_experiment(self, rg: str, ws: str, name: str, *, wait: bool = True) -> None:
        from openbai.services import deletions

        self._delete(deletions.begin(self.app, "experiment", rg, ws, name), wait=wait)

    def _delete(self, deletion: Deletion, *, wait: bool) -> None:
        """The delete's second step here, or (``--no-wait``) in a detached process."""
        from openbai.services import deletions

        if wait:
            deletions.finish(self.app, deletion)
        else:
            deletions.finish_in_background()

    # clusters
    def create_cluster(
        self, rg: str, ws: str, name: str, body: Mapping[str, Any], *, use_auto_storage: bool
    ) -> dict[str, Any]:
        from openbai.services import clusters

        return cluster_view(
            self.app.settings,
            clusters.create_cluster(
                self.app, rg, ws, name, body, use_auto_storage=use_auto_storage
            ),
        )

    def get_cluster(self, rg: str, ws: str, name: str) -> dict[str, Any]:
        from openbai.services import clusters

        return cluster_view(self.app.settings, clusters.get_cluster(self.app, rg, ws, name))

    def list_clusters(self, rg: str, ws: str) -> list[dict[str, Any]]:
        from openbai.services import clusters

        return [
            cluster_view(self.app.settings, r) for r in clusters.list_clusters(self.app, rg, ws)
        ]

    def update_cluster(
        self, rg: str, ws: str, name: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        from openbai.services import clusters

        return cluster_view(
            self.app.settings, clusters.update_cluster(self.app, rg, ws, name, body)
        )

    def delete_cluster(self, rg: str, ws: str, name: str, *, wait: bool = True) -> None:
        from openbai.services import deletions

        self._delete(deletions.begin(self.app, "cluster", rg, ws, name), wait=wait)

    def list_cluster_nodes(self, rg: str, ws: str, name: str) -> list[dict[str, Any]]:
        from openbai.services import nodes

        return [n.to_wire() for n in nodes.cluster_nodes(self.app, rg, ws, name)]

    def exec_on_cluster_node(
        self, rg: str, ws: str, name: str, node_id: str, command: str, *, timeout: int
    ) -> dict[str, Any]:
        from openbai.services import nodes

        command, timeout = nodes.check_exec_request(command, timeout)
        found = nodes.cluster_node_command(self.app, rg, ws, name, node_id, command)
        return nodes.run_captured(found, timeout=timeout).to_wire()

    def list_cluster_files(
        self, rg: str, ws: str, name: str, *, path: str, expiry: int
    ) -> list[dict[str, Any]]:
        """The setup task's output files; links are local file URLs, which do not expire."""
        from openbai.services import setup_files

        _, found = setup_files.list_setup_task_files(self.app, rg, ws, name, path=path)
        return [
            {
                "name": f.name,
                "download_url": f.url,
                "is_directory": f.is_directory,
                "size": f.size,
            }
            for f in found
        ]

    # file servers
    def create_file_server(
        self, rg: str, ws: str, name: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        from openbai.services import file_servers

        return file_server_view(
            self.app.settings, file_servers.create_file_server(self.app, rg, ws, name, body)
        )

    def get_file_server(self, rg: str, ws: str, name: str) -> dict[str, Any]:
        from openbai.services import file_servers

        return file_server_view(
            self.app.settings, file_servers.get_file_server(self.app, rg, ws, name)
        )

    def list_file_servers(self, rg: str, ws: str) -> list[dict[str, Any]]:
        from openbai.services import file_servers

        return [
            file_server_view(self.app.settings, r)
            for r in file_servers.list_file_servers(self.app, rg, ws)
        ]

    def delete_file_server(self, rg: str, ws: str, name: str, *, delete_data: bool = False) -> None:
        from openbai.services import file_servers

        file_servers.delete_file_server(self.app, rg, ws, name, delete_data=delete_data)

    # usages
    def list_usages(self, location: str) -> list[dict[str, Any]]:
        from openbai.services import usages

        return [u.to_wire() for u in usages.usages(self.app, location)]

    # jobs
    def create_job(
        self,
        rg: str,
        ws: str,
        exp: str,
        name: str,
        body: Mapping[str, Any],
        *,
        cluster: str | None,
    ) -> dict[str, Any]:
        from openbai.services import jobs

        return job_view(
            self.app.settings,
            jobs.create_job(self.app, rg, ws, exp, name, body, cluster=cluster),
        )

    def get_job(self, rg: str, ws: str, exp: str, name: str) -> dict[str, Any]:
        reader = self._reader()
        quick = reader.get_job(rg, ws, exp, name) if reader else None
        if quick:
            return job_view(self.settings, quick)
        from openbai.services import jobs

        return job_view(self.app.settings, jobs.get_job(self.app, rg, ws, exp, name))

    def list_jobs(self, rg: str, ws: str, exp: str) -> list[dict[str, Any]]:
        reader = self._reader()
        quick = reader.list_jobs(rg, ws, exp) if reader else None
        if quick is not None:
            return [job_view(self.settings, r) for r in quick]
        from openbai.services import jobs

        return [job_view(self.app.settings, r) for r in jobs.list_jobs(self.app, rg, ws, exp)]

    def terminate_job(self, rg: str, ws: str, exp: str, name: str) -> dict[str, Any]:
        from openbai.services import jobs

        return job_view(self.app.settings, jobs.terminate_job(self.app, rg, ws, exp, name))

    def delete_job(self, rg: str, ws: str, exp: str, name: str, *, wait: bool = True) -> None:
        from openbai.services import deletions

        self._delete(deletions.begin(self.app, "job", rg, ws, name, experiment=exp), wait=wait)

    def list_job_nodes(self, rg: str, ws: str, exp: str, name: str) -> list[dict[str, Any]]:
        from openbai.services import nodes

        return [n.to_wire() for n in nodes.job_nodes(self.app, rg, ws, exp, name)]

    def exec_on_job_node(
        self, rg: str, ws: str, exp: str, name: str, node_id: str, command: str, *, timeout: int
    ) -> dict[str, Any]:
        from openbai.services import nodes

        command, timeout = nodes.check_exec_request(command, timeout)
        found = nodes.job_node_command(self.app, rg, ws, exp, name, node_id, command)
        return nodes.run_captured(found, timeout=timeout).to_wire()

    def list_job_files(
        self, rg: str, ws: str, exp: str, job: str, *, directory_id: str, path: str, expiry: int
    ) -> list[dict[str, Any]]:
        """A job's output files; links are local file URLs, which do not expire."""
        reader = self._reader()
        location = reader.output_location(rg, ws, exp, job, directory_id) if reader else None
        if location is not None:
            from openbai.services.output_listing import list_folder

            backend = self.storage(location.account, location.volume_kind)
            return [_file_row(f) for f in list_folder(backend, location, path, directory_id)]
        from openbai.services import files

        return [
            _file_row(f)
            for f in files.list_output_files(
                self.app, rg, ws, exp, job, directory_id=directory_id, path=path
            )
        ]

    def stream_job_file(
        self,
        rg: str,
        ws: str,
        exp: str,
        job: str,
        name: str,
        *,
        directory_id: str,
        path: str,
        offset: int = 0,
    ) -> Iterator[bytes]:
        from openbai.services import files

        return files.follow_output_file(
            self.app, rg, ws, exp, job, name, directory_id=directory_id, path=path, offset=offset
        )

    # storage
    def create_account(
        self, name: str, *, kind: str, resource_group: str | None, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        from openbai.services import accounts

        return accounts.create_account(
            self.app, name, kind=kind, resource_group=resource_group, options=dict(options)
        ).public()

    def get_account(self, name: str) -> dict[str, Any]:
        from openbai.services import accounts

        return accounts.get_account(self.app, name).public()

    def list_accounts(self) -> list[dict[str, Any]]:
        from openbai.services import accounts

        return [a.public() for a in accounts.list_accounts(self.app)]

    def delete_account(self, name: str) -> None:
        from openbai.services import accounts

        accounts.delete_account(self.app, name)

    def storage(self, account: str, kind: VolumeKind) -> StorageBackend:
        """The backend itself: volume and file commands run on it directly."""
        reader = self._reader()
        found = reader.account_options(account) if reader else None
        if found is not None:  # what accounts.backend does, without the ORM (~0.4 s to load)
            from openbai.storage.registry import backend_for

            account_kind, options, sealed = found
            secrets: dict[str, Any] = {}
            if sealed:  # an embedded account has none: cryptography stays unloaded (~10 ms)
                from openbai.store.secrets import Sealer

                secrets = Sealer(self.settings.home / "secret.key").unseal(sealed)
            return backend_for(account, account_kind, kind, {**options, **secrets})
        from openbai.services import accounts

        return accounts.backend(self.app, account, kind)

    def create_volume(self, account: str, kind: VolumeKind, name: str) -> dict[str, Any]:
        from openbai.services import accounts

        volume = accounts.create_volume(self.app, account, kind, name)
        return {"name": volume.name, "kind": volume.kind.value, "account": account}

    def close(self) -> None:
        if self._app is not None:
            self._app.close()


def _file_row(f: OutputFile) -> dict[str, Any]:
    return {
        "name": f.name,
        "fileType": "directory" if f.is_directory else "file",
        "downloadUrl": f.url,
        "contentLength": f.size,
        "lastModified": iso(f.modified),
    }


def read_path(path: str) -> Path:
    return Path(path).expanduser()

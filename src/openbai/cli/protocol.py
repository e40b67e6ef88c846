"""What every ``bai`` command may ask of openbai, whichever way the answer comes: in-process
(:class:`~openbai.cli.client.EmbeddedClient`) or from a server
(:class:`~openbai.cli.remote.RemoteClient`). Both return the REST API's JSON shapes, so a
command prints the same thing either way; mypy holds both to this one interface."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from openbai.storage.base import StorageBackend, VolumeKind


class Client(Protocol):
    @property
    def default_resource_group(self) -> str: ...

    @property
    def subscription_id(self) -> str: ...

    def create_workspace(
        self, rg: str, name: str, location: str | None, tags: Mapping[str, str]
    ) -> dict[str, Any]: ...

    def get_workspace(self, rg: str, name: str) -> dict[str, Any]: ...

    def list_workspaces(self, rg: str | None) -> list[dict[str, Any]]: ...

    def delete_workspace(self, rg: str, name: str, *, wait: bool = True) -> None: ...

    def create_experiment(self, rg: str, ws: str, name: str) -> dict[str, Any]: ...

    def get_experiment(self, rg: str, ws: str, name: str) -> dict[str, Any]: ...

    def list_experiments(self, rg: str, ws: str) -> list[dict[str, Any]]: ...

    def delete_experiment(self, rg: str, ws: str, name: str, *, wait: bool = True) -> None: ...

    def create_cluster(
        self, rg: str, ws: str, name: str, body: Mapping[str, Any], *, use_auto_storage: bool
    ) -> dict[str, Any]: ...

    def get_cluster(self, rg: str, ws: str, name: str) -> dict[str, Any]: ...

    def list_clusters(self, rg: str, ws: str) -> list[dict[str, Any]]: ...

    def update_cluster(
        self, rg: str, ws: str, name: str, body: Mapping[str, Any]
    ) -> dict[str, Any]: ...

    def delete_cluster(self, rg: str, ws: str, name: str, *, wait: bool = True) -> None: ...

    def list_cluster_nodes(self, rg: str, ws: str, name: str) -> list[dict[str, Any]]: ...

    def list_cluster_files(
        self, rg: str, ws: str, name: str, *, path: str, expiry: int
    ) -> list[dict[str, Any]]:
        """The setup task's output files; links are local file URLs, which do not expire."""
        ...

    def exec_on_cluster_node(
        self, rg: str, ws: str, name: str, node_id: str, command: str, *, timeout: int
    ) -> dict[str, Any]:
        """Run ``command`` on the node with no terminal: exitCode, stdout, stderr, their
        ``...Truncated`` flags and timedOut (services/nodes.py NodeOutput)."""
        ...

    def create_file_server(
        self, rg: str, ws: str, name: str, body: Mapping[str, Any]
    ) -> dict[str, Any]: ...

    def get_file_server(self, rg: str, ws: str, name: str) -> dict[str, Any]: ...

    def list_file_servers(self, rg: str, ws: str) -> list[dict[str, Any]]: ...

    def delete_file_server(self, rg: str, ws: str, name: str, *, delete_data: bool = False) -> None:
        """Stop it and delete the resource; its files are kept unless ``delete_data``."""
        ...

    def list_usages(self, location: str) -> list[dict[str, Any]]: ...

    def create_job(
        self,
        rg: str,
        ws: str,
        exp: str,
        name: str,
        body: Mapping[str, Any],
        *,
        cluster: str | None,
    ) -> dict[str, Any]: ...

    def get_job(self, rg: str, ws: str, exp: str, name: str) -> dict[str, Any]: ...

    def list_jobs(self, rg: str, ws: str, exp: str) -> list[dict[str, Any]]: ...

    def terminate_job(self, rg: str, ws: str, exp: str, name: str) -> dict[str, Any]: ...

    def delete_job(self, rg: str, ws: str, exp: str, name: str, *, wait: bool = True) -> None: ...

    def list_job_nodes(self, rg: str, ws: str, exp: str, name: str) -> list[dict[str, Any]]: ...

    def exec_on_job_node(
        self, rg: str, ws: str, exp: str, name: str, node_id: str, command: str, *, timeout: int
    ) -> dict[str, Any]:
        """As :meth:`exec_on_cluster_node`, on a node of a running job."""
        ...

    def list_job_files(
        self, rg: str, ws: str, exp: str, job: str, *, directory_id: str, path: str, expiry: int
    ) -> list[dict[str, Any]]:
        """A job's output files; links are local file URLs, which do not expire."""
        ...

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
    ) -> Iterator[bytes]: ...

    def create_account(
        self, name: str, *, kind: str, resource_group: str | None, options: Mapping[str, Any]
    ) -> dict[str, Any]: ...

    def get_account(self, name: str) -> dict[str, Any]: ...

    def list_accounts(self) -> list[dict[str, Any]]: ...

    def delete_account(self, name: str) -> None: ...

    def storage(self, account: str, kind: VolumeKind) -> StorageBackend:
        """The backend itself: volume and file commands run on it directly."""
        ...

    def create_volume(self, account: str, kind: VolumeKind, name: str) -> dict[str, Any]: ...

    def close(self) -> None: ...

"""The CLI's client for a ``bai serve`` server (``--server URL`` / ``BAI_SERVER``).

Same methods and return shapes as :class:`~openbai.cli.client.EmbeddedClient`, over the
REST API: every command prints the same whichever way it went. Error responses become
openbai's exceptions again (by status), so the CLI's messages and exit codes match too.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from openbai.cli.outage import Outage
from openbai.cli.remote_storage import RemoteStorage, raise_for_error
from openbai.errors import NotFoundError, OpenBaiError
from openbai.storage.base import StorageBackend, VolumeKind

API_VERSION = "2018-05-01"
#: seconds between polls of a long-running operation (the server asks for 1; a person waits)
POLL_INTERVAL = 0.2


class RemoteClient:
    def __init__(self, server: str, token: str | None):
        self.server = server.rstrip("/")
        self._http = httpx.Client(
            base_url=self.server,
            headers={"Authorization": f"Bearer {token}"} if token else {},
            timeout=httpx.Timeout(60.0, connect=10.0),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        )
        self._info: dict[str, Any] | None = None

    # -- plumbing ---------------------------------------------------------------------------
    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise OpenBaiError(
                f"cannot reach the openbai server at {self.server}: {exc}", code="ServerUnreachable"
            ) from exc
        raise_for_error(response)
        return response

    def _arm(self, method: str, path: str, **kwargs: Any) -> Any:
        params = {"api-version": API_VERSION, **kwargs.pop("params", {})}
        response = self.request(method, path, params=params, **kwargs)
        return response.json() if response.content else None

    def _long_running(self, method: str, path: str, *, wait: bool) -> None:
        """Start a long-running operation; with ``wait``, poll its status URL until it ends."""
        response = self.request(method, path, params={"api-version": API_VERSION})
        if method == "DELETE" and response.status_code == 204:
            # ARM's "nothing to delete": the CLI says so, as it does in-process (exit 3)
            name = path.rstrip("/").rsplit("/", 1)[-1]
            raise NotFoundError(f"{name} does not exist", code="ResourceNotFound", target=name)
        status_url = response.headers.get("Azure-AsyncOperation")
        while wait and status_url:
            status = self.request("GET", status_url).json()
            if str(status.get("status", "")).lower() != "inprogress":
                if str(status.get("status", "")).lower() != "succeeded":
                    error = status.get("error") or {}
                    raise OpenBaiError(
                        str(error.get("message") or f"{method} {path} failed"),
                        code=str(error.get("code") or "OperationFailed"),
                    )
                return
            time.sleep(POLL_INTERVAL)

    def _list(self, path: str, method: str = "GET", **params: Any) -> list[dict[str, Any]]:
        """Every item of a paged list, following ``nextLink`` as the SDK does."""
        page = self._arm(method, path, params=params)
        items: list[dict[str, Any]] = list(page["value"])
        while page.get("nextLink"):
            page = self.request("GET", page["nextLink"]).json()
            items += page["value"]
        return items

    @property
    def info(self) -> dict[str, Any]:
        if self._info is None:
            self._info = dict(self.request("GET", "/openbai/info").json())
        return self._info

    @property
    def default_resource_group(self) -> str:
        return str(self.info["resourceGroup"])

    @property
    def subscription_id(self) -> str:
        return str(self.info["subscriptionId"])

    def _rg(self, rg: str) -> str:
        sub = _q(self.info["subscriptionId"])
        return f"/subscriptions/{sub}/resourceGroups/{_q(rg)}/providers/Microsoft.BatchAI"

    def _ws(self, rg: str, ws: str, *rest: str) -> str:
        """``.../workspaces/{ws}`` and further segments (``"clusters", name``), quoted."""
        return "/".join([f"{self._rg(rg)}/workspaces/{_q(ws)}", *map(_q, rest)])

    def _job(self, rg: str, ws: str, exp: str, job: str) -> str:
        return self._ws(rg, ws, "experiments", exp, "jobs", job)

    # -- workspaces and experiments ---------------------------------------------------------
    def create_workspace(
        self, rg: str, name: str, location: str | None, tags: Mapping[str, str]
    ) -> dict[str, Any]:
        body = {"location": location or self.info["location"], "tags": dict(tags)}
        return dict(self._arm("PUT", self._ws(rg, name), json=body))

    def get_workspace(self, rg: str, name: str) -> dict[str, Any]:
        return dict(self._arm("GET", self._ws(rg, name)))

    def list_workspaces(self, rg: str | None) -> list[dict[str, Any]]:
        if rg is None:
            sub = self.info["subscriptionId"]
            return self._list(f"/subscriptions/{_q(sub)}/providers/Microsoft.BatchAI/workspaces")
        return self._list(self._rg(rg) + "/workspaces")

    def delete_workspace(self, rg: str, name: str, *, wait: bool = True) -> None:
        self._long_running("DELETE", self._ws(rg, name), wait=wait)

    def create_experiment(self, rg: str, ws: str, name: str) -> dict[str, Any]:
        return dict(self._arm("PUT", self._ws(rg, ws, "experiments", name)))

    def get_experiment(self, rg: str, ws: str, name: str) -> dict[str, Any]:
        return dict(self._arm("GET", self._ws(rg, ws, "experiments", name)))

    def list_experiments(self, rg: str, ws: str) -> list[dict[str, Any]]:
        return self._list(self._ws(rg, ws, "experiments"))

    def delete_experiment(self, rg: str, ws: str, name: str, *, wait: bool = True) -> None:
        self._long_running("DELETE", self._ws(rg, ws, "experiments", name), wait=wait)

    # -- clusters ---------------------------------------------------------------------------
    def create_cluster(
        self, rg: str, ws: str, name: str, body: Mapping[str, Any], *, use_auto_storage: bool
    ) -> dict[str, Any]:
        params = {"openbai-use-auto-storage": "true"} if use_auto_storage else {}
        url = self._ws(rg, ws, "clusters", name)
        return dict(self._arm("PUT", url, json=dict(body), params=params))

    def get_cluster(self, rg: str, ws: str, name: str) -> dict[str, Any]:
        return dict(self._arm("GET", self._ws(rg, ws, "clusters", name)))

    def list_clusters(self, rg: str, ws: str) -> list[dict[str, Any]]:
        return self._list(self._ws(rg, ws, "clusters"))

    def update_cluster(
        self, rg: str, ws: str, name: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        return dict(self._arm("PATCH", self._ws(rg, ws, "clusters", name), json=dict(body)))

    def delete_cluster(self, rg: str, ws: str, name: str, *, wait: bool = True) -> None:
        self._long_running("DELETE", self._ws(rg, ws, "clusters", name), wait=wait)

    def list_cluster_nodes(self, rg: str, ws: str, name: str) -> list[dict[str, Any]]:
        url = self._ws(rg, ws, "clusters", name, "listRemoteLoginInformation")
        return self._list(url, method="POST")

    def exec_on_cluster_node(
        self, rg: str, ws: str, name: str, node_id: str, command: str, *, timeout: int
    ) -> dict[str, Any]:
        url = self._ws(rg, ws, "clusters", name, "nodes", node_id, "exec")
        return self._exec(url, command, timeout)

    def _exec(self, url: str, command: str, timeout: int) -> dict[str, Any]:
        body = {"command": command, "timeoutSeconds": timeout}
        # the server answers when the command has ended: wait as long as it may run
        return dict(self._arm("POST", url, json=body, timeout=timeout + 60.0))

    def list_cluster_files(
        self, rg: str, ws: str, name: str, *, path: str, expiry: int
    ) -> list[dict[str, Any]]:
        files = self._list(
            self._ws(rg, ws, "clusters", name, "listOutputFiles"),
            method="POST",
            directory=path or ".",
            linkexpiryinminutes=expiry,
        )
        return [
            {
                "name": f["name"],
                "download_url": f.get("downloadUrl"),
                "is_directory": f["fileType"] == "directory",
                "size": (f.get("properties") or {}).get("contentLength"),
            }
            for f in files
        ]

    # -- file servers -----------------------------------------------------------------------
    def create_file_server(
        self, rg: str, ws: str, name: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        return dict(self._arm("PUT", self._ws(rg, ws, "fileServers", name), json=dict(body)))

    def get_file_server(self, rg: str, ws: str, name: str) -> dict[str, Any]:
        return dict(self._arm("GET", self._ws(rg, ws, "fileServers", name)))

    def list_file_servers(self, rg: str, ws: str) -> list[dict[str, Any]]:
        return self._list(self._ws(rg, ws, "fileServers"))

    def delete_file_server(self, rg: str, ws: str, name: str, *, delete_data: bool = False) -> None:
        # openbai's own query parameter; without it the server keeps the files, as for az
        params = {"openbai-delete-data": "true"} if delete_data else {}
        self._arm("DELETE", self._ws(rg, ws, "fileServers", name), params=params)

    # -- usages -----------------------------------------------------------------------------
    def list_usages(self, location: str) -> list[dict[str, Any]]:
        sub = _q(self.info["subscriptionId"])
        return self._list(
            f"/subscriptions/{sub}/providers/Microsoft.BatchAI/locations/{_q(location)}/usages"
        )

    # -- jobs -------------------------------------------------------------------------------
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
        data: dict[str, Any] = dict(body)
        if cluster and isinstance(data.get("properties"), dict):
            data["properties"] = {**data["properties"], "cluster": {"id": cluster}}
        return dict(self._arm("PUT", self._job(rg, ws, exp, name), json=data))

    def get_job(self, rg: str, ws: str, exp: str, name: str) -> dict[str, Any]:
        return dict(self._arm("GET", self._job(rg, ws, exp, name)))

    def list_jobs(self, rg: str, ws: str, exp: str) -> list[dict[str, Any]]:
        return self._list(self._ws(rg, ws, "experiments", exp, "jobs"))

    def terminate_job(self, rg: str, ws: str, exp: str, name: str) -> dict[str, Any]:
        self._arm("POST", f"{self._job(rg, ws, exp, name)}/terminate")
        return self.get_job(rg, ws, exp, name)

    def delete_job(self, rg: str, ws: str, exp: str, name: str, *, wait: bool = True) -> None:
        self._long_running("DELETE", self._job(rg, ws, exp, name), wait=wait)

    def list_job_nodes(self, rg: str, ws: str, exp: str, name: str) -> list[dict[str, Any]]:
        return self._list(f"{self._job(rg, ws, exp, name)}/listRemoteLoginInformation", "POST")

    def exec_on_job_node(
        self, rg: str, ws: str, exp: str, name: str, node_id: str, command: str, *, timeout: int
    ) -> dict[str, Any]:
        url = f"{self._job(rg, ws, exp, name)}/nodes/{_q(node_id)}/exec"
        return self._exec(url, command, timeout)

    def list_job_files(
        self, rg: str, ws: str, exp: str, job: str, *, directory_id: str, path: str, expiry: int
    ) -> list[dict[str, Any]]:
        files = self._list(
            f"{self._job(rg, ws, exp, job)}/listOutputFiles",
            method="POST",
            outputdirectoryid=directory_id,
            directory=path,
            linkexpiryinminutes=expiry,
        )
        return [
            {
                "name": f["name"],
                "fileType": f["fileType"],
                "downloadUrl": f.get("downloadUrl"),
                "contentLength": (f.get("properties") or {}).get("contentLength"),
                "lastModified": (f.get("properties") or {}).get("lastModified"),
            }
            for f in files
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
        """The file as the job writes it; a broken connection is resumed where it stopped."""
        url = f"{self._job(rg, ws, exp, job)}/streamOutputFile"
        params = {"api-version": API_VERSION, "outputdirectoryid": directory_id, "directory": path}
        position, outage = offset, Outage(self.server)
        while True:
            try:
                with self._http.stream(
                    "GET",
                    url,
                    params={**params, "file": name, "offset": position},
                    timeout=httpx.Timeout(30.0, read=None),
                ) as response:
                    if response.is_error:
                        response.read()
                        raise_for_error(response)
                    outage.passed()
                    for chunk in response.iter_raw():
                        position += len(chunk)
                        yield chunk
                return
            except (httpx.TransportError, httpx.RemoteProtocolError) as exc:
                outage.failed(exc)  # a restart of the server: resumed where it stopped

    # -- storage ----------------------------------------------------------------------------
    def create_account(
        self, name: str, *, kind: str, resource_group: str | None, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        body = {"kind": kind, "resourceGroup": resource_group, "options": dict(options)}
        return dict(self.request("PUT", f"/openbai/storage/accounts/{_q(name)}", json=body).json())

    def get_account(self, name: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/openbai/storage/accounts/{_q(name)}").json())

    def list_accounts(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/openbai/storage/accounts").json()["value"])

    def delete_account(self, name: str) -> None:
        self.request("DELETE", f"/openbai/storage/accounts/{_q(name)}")

    def storage(self, account: str, kind: VolumeKind) -> StorageBackend:
        """The account's volumes of one kind, through the server's storage endpoints."""
        return RemoteStorage(self._http, account, kind)

    def create_volume(self, account: str, kind: VolumeKind, name: str) -> dict[str, Any]:
        url = f"/openbai/storage/accounts/{_q(account)}/{kind.value}/{_q(name)}"
        return dict(self.request("PUT", url).json())

    def close(self) -> None:
        self._http.close()


def _q(segment: str) -> str:
    """One URL path segment: a name with ``/`` or ``?`` stays one segment (and is refused)."""
    return quote(segment, safe="")

"""The storage primitives of one account's volumes, through a ``bai serve`` server.

:class:`RemoteStorage` is a :class:`~openbai.storage.base.StorageBackend` over the server's
``/openbai/storage`` endpoints, so tree transfers, listing and following (written once on
the primitives) work unchanged through a server: ``bai --server URL storage blob
upload-batch ...``. Uploads keep the source's modification time, so re-runs skip unchanged
files as they do locally.

Error responses become openbai's exceptions again here (:func:`raise_for_error`), for the
whole CLI client.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from openbai.errors import (
    AuthError,
    AuthorizationError,
    ConflictError,
    NotFoundError,
    OpenBaiError,
    PermissionDeniedError,
    SpecError,
    StorageError,
)
from openbai.storage.atomic import atomic_target
from openbai.storage.base import FileInfo, StorageBackend, VolumeInfo, VolumeKind, blob_path
from openbai.storage.names import check_volume_name

#: HTTP status -> the error the server raised (the inverse of http/errors.py's table)
ERRORS: dict[int, type[OpenBaiError]] = {
    400: SpecError,
    401: AuthError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    502: StorageError,
    503: StorageError,
}
MTIME_HEADER = "x-openbai-mtime-ns"


def raise_for_error(response: httpx.Response) -> None:
    """Raise the openbai error an error response stands for (ARM body: code, message, target)."""
    if response.is_success:
        return
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    message = error.get("message") or f"the server answered {response.status_code}"
    cls = ERRORS.get(response.status_code, OpenBaiError)
    if error.get("code") == AuthorizationError.code:  # a role's or a workspace's refusal
        cls = AuthorizationError
    raise cls(message, code=error.get("code"), target=error.get("target"))


def _file_info(data: dict[str, Any]) -> FileInfo:
    modified = data.get("modified")
    return FileInfo(
        path=data["path"],
        is_dir=data["isDir"],
        size=data["size"],
        modified=datetime.fromisoformat(modified.replace("Z", "+00:00")) if modified else None,
        md5=data.get("md5"),
    )


class RemoteStorage(StorageBackend):
    """One account's containers (or shares) on a server; built on the CLI's HTTP client."""

    name = "remote"

    def __init__(self, http: httpx.Client, account: str, kind: VolumeKind):
        self._http = http
        self.account = account
        self.kind = kind

    @classmethod
    def from_options(
        cls, account: str, kind: VolumeKind, options: Mapping[str, Any]
    ) -> RemoteStorage:
        """Options: ``server`` (URL) and ``token``."""
        token = options.get("token")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return cls(httpx.Client(base_url=options["server"], headers=headers), account, kind)

    def _url(self, volume: str | None = None, action: str = "") -> str:
        url = f"/openbai/storage/accounts/{quote(self.account, safe='')}/{self.kind.value}"
        if volume is not None:
            url += f"/{quote(check_volume_name(volume), safe='')}"
        return f"{url}/{action}" if action else url

    def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise StorageError(f"cannot reach the openbai server: {exc}") from exc
        raise_for_error(response)
        return response

    # -- volumes -------------------------------------------------------------------------------
    def list_volumes(self) -> list[VolumeInfo]:
        rows = self._call("GET", self._url()).json()["value"]
        return [VolumeInfo(r["name"], VolumeKind(r["kind"])) for r in rows]

    def create_volume(self, volume: str) -> VolumeInfo:
        row = self._call("PUT", self._url(volume)).json()
        return VolumeInfo(row["name"], VolumeKind(row["kind"]))

    def delete_volume(self, volume: str) -> None:
        self._call("DELETE", self._url(volume))

    # -- files ---------------------------------------------------------------------------------
    def stat(self, volume: str, path: str) -> FileInfo:
        params = {"path": blob_path(path)}
        return _file_info(self._call("GET", self._url(volume, "stat"), params=params).json())

    def list_dir(
        self, volume: str, path: str = "", *, recursive: bool = False
    ) -> Iterator[FileInfo]:
        params = {"path": blob_path(path), "recursive": str(recursive).lower()}
        rows = self._call("GET", self._url(volume, "list"), params=params).json()["value"]
        return iter([_file_info(r) for r in rows])

    def read(self, volume: str, path: str, offset: int = 0, length: int | None = None) -> bytes:
        params: dict[str, Any] = {"path": blob_path(path), "offset": offset}
        if length is not None:
            params["length"] = length
        return self._call("GET", self._url(volume, "content"), params=params).content

    def upload(self, volume: str, path: str, source: Path) -> FileInfo:
        clean = blob_path(path, allow_root=False)
        try:
            mtime_ns = source.stat().st_mtime_ns
            stream = open(source, "rb")
        except FileNotFoundError:
            raise NotFoundError(f"{source}: no such file", target="source") from None
        except OSError as exc:
            raise StorageError(f"cannot read {source}: {exc.strerror}", target="source") from exc
        with stream:
            response = self._call(
                "PUT",
                self._url(volume, "content"),
                params={"path": clean},
                content=stream,
                headers={MTIME_HEADER: str(mtime_ns)},
            )
        return _file_info(response.json())

    def download(self, volume: str, path: str, target: Path) -> None:
        params = {"path": blob_path(path, allow_root=False)}
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._http.stream("GET", self._url(volume, "content"), params=params) as response:
                if response.is_error:
                    response.read()
                    raise_for_error(response)
                with atomic_target(target) as tmp, open(tmp, "wb") as f:
                    for chunk in response.iter_bytes():
                        f.write(chunk)
        except httpx.HTTPError as exc:
            raise StorageError(f"download of {path} failed: {exc}", target=path) from exc

    def delete(self, volume: str, path: str) -> None:
        self._call("DELETE", self._url(volume, "content"), params={"path": blob_path(path)})

    def make_dir(self, volume: str, path: str) -> None:
        self._call("PUT", self._url(volume, "directory"), params={"path": blob_path(path)})

"""The ``mountVolumes`` block: which storage a cluster or a job sees, and where.

The same shape serves cluster-level mounts (under ``$AZ_BATCHAI_MOUNT_ROOT``) and job-level
mounts (under ``$AZ_BATCHAI_JOB_MOUNT_ROOT``). Each volume names a ``relativeMountPath``
below that root; the paths of one block must be distinct and must not nest, otherwise one
mount would hide another.

Deliberately lenient, because real recipes rely on it:

* ``accountName`` and ``credentials`` of an Azure File share are optional: the CLI derived
  the account from ``azureFileUrl`` (:meth:`AzureFileShareReference.url_account`) and looked
  the key up itself.
* placeholders such as ``<AZURE_BATCHAI_STORAGE_ACCOUNT>`` are accepted anywhere; they are
  substituted later (:mod:`openbai.spec.placeholders`).
* ``null`` collections (as GET responses print them) read as empty lists.

An ``azureFileUrl`` may carry a path after the share name
(``https://acct.file.core.windows.net/share/logs``); the mount then shows only that
sub-directory (:attr:`AzureFileShareReference.share_subpath`), as in Batch AI's quickstart.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import AfterValidator, model_validator

from openbai.spec.base import FieldError, WireModel, secret_field
from openbai.spec.common import (
    KeyVaultSecretReference,
    NonEmptyStr,
    NullAsEmpty,
    RelativePath,
    ResourceId,
)

__all__ = [
    "AzureBlobFileSystemReference",
    "AzureFileShareReference",
    "AzureStorageCredentialsInfo",
    "FileServerReference",
    "MountReference",
    "MountVolumes",
    "UnmanagedFileSystemReference",
]

_FILE_URL = re.compile(
    r"(?P<scheme>https?)://(?P<host>[^/:?#\s]+)(?::(?P<port>\d{1,5}))?"
    r"/(?P<share>[^/?#\s]+)(?P<rest>/[^?#\s]*)?"
)
_MODE = re.compile(r"[0-7]{4}")


def _file_url(value: str) -> str:
    match = _FILE_URL.fullmatch(value)
    if not match:
        raise ValueError(
            f"{value!r} is not a file share URL; expected "
            "https://<account>.file.core.windows.net/<share>[/sub/dir]"
        )
    rest = match.group("rest") or ""
    if ".." in rest.split("/") or match.group("share") == "..":
        raise ValueError(f"{value!r} must not contain '..'")
    return value


def _mode(value: str) -> str:
    if not _MODE.fullmatch(value):
        raise ValueError(f"{value!r} is not a file mode; use 4 octal digits such as 0777")
    return value


FileUrl = Annotated[str, AfterValidator(_file_url)]
FileMode = Annotated[str, AfterValidator(_mode)]


class AzureStorageCredentialsInfo(WireModel):
    """A storage account key, or a Key Vault reference to one; ``{}`` means "look it up"."""

    account_key: str | None = secret_field()
    account_key_secret_reference: KeyVaultSecretReference | None = None

    @model_validator(mode="after")
    def _at_most_one(self) -> AzureStorageCredentialsInfo:
        if self.account_key is not None and self.account_key_secret_reference is not None:
            raise FieldError("give accountKey or accountKeySecretReference, not both")
        return self


def _credentials_info(data: Any) -> Any:
    """Read ``credentialsInfo``, the 2017-09-01-preview name of ``credentials``."""
    if isinstance(data, dict) and "credentialsInfo" in data and "credentials" not in data:
        data = {**data, "credentials": data["credentialsInfo"]}
    return data


class AzureFileShareReference(WireModel):
    """An Azure File share (SMB) mounted at ``relativeMountPath``."""

    legacy_keys = frozenset({"credentialsInfo"})

    @model_validator(mode="before")
    @classmethod
    def _old_credentials_name(cls, data: Any) -> Any:
        return _credentials_info(data)

    account_name: str | None = None
    azure_file_url: FileUrl
    credentials: AzureStorageCredentialsInfo | None = None
    relative_mount_path: RelativePath
    file_mode: FileMode = "0777"
    directory_mode: FileMode = "0777"

    def url_account(self) -> str:
        """The account named by the URL's host: ``acct`` in ``acct.file.core.windows.net``."""
        return self._url_part("host").split(".", 1)[0]

    @property
    def share_name(self) -> str:
        """The share: the first path segment of ``azureFileUrl``."""
        return self._url_part("share")

    @property
    def share_subpath(self) -> str:
        """The directory inside the share to mount (``""`` for the whole share)."""
        return (self._url_part("rest") or "").strip("/")

    def _url_part(self, name: str) -> str:
        match = _FILE_URL.fullmatch(self.azure_file_url)
        assert match is not None, "azureFileUrl was validated"
        return match.group(name) or ""


class AzureBlobFileSystemReference(WireModel):
    """A blob container mounted with blobfuse (or our equivalent) at ``relativeMountPath``."""

    legacy_keys = frozenset({"credentialsInfo"})

    @model_validator(mode="before")
    @classmethod
    def _old_credentials_name(cls, data: Any) -> Any:
        return _credentials_info(data)

    account_name: NonEmptyStr
    container_name: NonEmptyStr
    credentials: AzureStorageCredentialsInfo | None = None
    relative_mount_path: RelativePath
    mount_options: str | None = None


class FileServerReference(WireModel):
    """An NFS export of a Batch AI file server (``sourceDirectory`` or the whole disk)."""

    file_server: ResourceId
    source_directory: str | None = None
    relative_mount_path: RelativePath
    mount_options: str | None = None


class UnmanagedFileSystemReference(WireModel):
    """Any file system mounted by a user command, to which the mount path is appended."""

    mount_command: NonEmptyStr
    relative_mount_path: RelativePath


MountReference = (
    AzureFileShareReference
    | AzureBlobFileSystemReference
    | FileServerReference
    | UnmanagedFileSystemReference
)
"""Any one volume of a :class:`MountVolumes` block."""

_COLLECTIONS = (
    ("azure_file_shares", "azureFileShares"),
    ("azure_blob_file_systems", "azureBlobFileSystems"),
    ("file_servers", "fileServers"),
    ("unmanaged_file_systems", "unmanagedFileSystems"),
)


class MountVolumes(WireModel):
    """All volumes of one cluster or job; their mount paths are distinct and do not nest."""

    azure_file_shares: Annotated[list[AzureFileShareReference], NullAsEmpty] = []
    azure_blob_file_systems: Annotated[list[AzureBlobFileSystemReference], NullAsEmpty] = []
    file_servers: Annotated[list[FileServerReference], NullAsEmpty] = []
    unmanaged_file_systems: Annotated[list[UnmanagedFileSystemReference], NullAsEmpty] = []

    def iter_references(self) -> Iterator[tuple[str, int, MountReference]]:
        """``(collection, index, volume)`` for every volume, collection as on the wire."""
        for attr, wire_name in _COLLECTIONS:
            items: list[MountReference] = getattr(self, attr)
            for index, item in enumerate(items):
                yield wire_name, index, item

    @model_validator(mode="after")
    def _paths_do_not_collide(self) -> MountVolumes:
        seen: list[tuple[str, str]] = []
        for wire_name, index, item in self.iter_references():
            path = posixpath.normpath(item.relative_mount_path)
            here = f"{wire_name}[{index}]"
            for other_path, other in seen:
                if path == other_path:
                    problem = f"is also used by {other}"
                elif path.startswith(other_path + "/"):
                    problem = f"lies inside {other_path!r} of {other}"
                elif other_path.startswith(path + "/"):
                    problem = f"contains {other_path!r} of {other}"
                else:
                    continue
                raise FieldError(
                    f"mount path {item.relative_mount_path!r} {problem}",
                    wire_name,
                    index,
                    "relativeMountPath",
                )
            seen.append((path, here))
        return self

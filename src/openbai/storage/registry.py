"""The storage registry: backend names to classes, and account kinds to backends.

A backend is named by a short lowercase key and imported on first use, so an optional SDK
is only needed by the accounts that use it. Third-party backends register under the
entry-point group ``openbai.storage`` (name = backend key, value = ``module:Class``)::

    [project.entry-points."openbai.storage"]
    s3 = "openbai_s3:S3Storage"

Built-in names win over entry points of the same name. An account kind names the backend
that serves each kind of volume in it (see :data:`ACCOUNT_KINDS`).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping
from typing import Any

from openbai.errors import SpecError, StorageError
from openbai.storage.base import StorageBackend, VolumeKind

#: backend key -> "module:Class" (keep sorted)
BACKENDS: Mapping[str, str] = {
    "azure_blob": "openbai.storage.azure_blob:AzureBlobStorage",
    "local": "openbai.storage.local:LocalStorage",
    "nfs": "openbai.storage.nfs:NfsStorage",
    "smb": "openbai.storage.smb:SmbStorage",
}

#: account kind -> the backend key serving each kind of volume (keep sorted)
ACCOUNT_KINDS: Mapping[str, Mapping[VolumeKind, str]] = {
    "azure": {VolumeKind.BLOB: "azure_blob", VolumeKind.FILE: "smb"},
    "local": {VolumeKind.BLOB: "local", VolumeKind.FILE: "local"},
    # a file server's export, or one a job's mount command names (no blob containers)
    "nfs": {VolumeKind.BLOB: "nfs", VolumeKind.FILE: "nfs"},
}

#: account kinds openbai mounts with the file system's own client but never reads itself (no
#: backend: their files cannot be listed or streamed) -> the mounter's key
MOUNT_ONLY_KINDS: Mapping[str, str] = {
    # a GlusterFS volume a job's mount command names
    "gluster": "gluster",
}


def mounter_key(account_kind: str, volume_kind: VolumeKind) -> str:
    """The key of what mounts an account kind's volumes of ``volume_kind`` on a node."""
    return MOUNT_ONLY_KINDS.get(account_kind) or ACCOUNT_KINDS[account_kind][volume_kind]


#: top-level module of an optional dependency -> the extra that installs it
_EXTRAS: Mapping[str, str] = {
    "azure": "azure",
    "smbclient": "azure",
    "smbprotocol": "azure",
}

ENTRY_POINT_GROUP = "openbai.storage"


def entry_points(*, group: str) -> Any:
    """``importlib.metadata.entry_points``, imported on first use: it loads email, zipfile
    and csv (~10 ms of a ``bai`` read that opens a built-in backend)."""
    from importlib.metadata import entry_points as installed

    return installed(group=group)


def _entry_point_targets() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def backend_names() -> list[str]:
    """Every backend key: the built-in ones and those registered through entry points."""
    return sorted({*BACKENDS, *_entry_point_targets()})


def missing_package(name: str, error: ModuleNotFoundError) -> Exception:
    """What to raise when backend ``name`` lacks a package: the install hint where the package
    comes with one of openbai's extras, ``error`` itself otherwise. Backends that import their
    SDK when they first need it (azure_blob: a tree transfer never does) call it there."""
    extra = _EXTRAS.get((error.name or "").partition(".")[0])
    if extra is None:
        return error
    return StorageError(
        f"storage backend {name!r} needs the package {error.name!r}: pip install 'openbai[{extra}]'",
        target=name,
    )


@functools.cache
def backend_class(name: str) -> type[StorageBackend]:
    """The backend class registered under ``name``, imported now if it was not yet."""
    target = BACKENDS.get(name) or _entry_point_targets().get(name)
    if target is None:
        raise StorageError(
            f"no storage backend named {name!r} (known: {', '.join(backend_names())})",
            target=name,
        )
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        hint = missing_package(name, e)
        if hint is e:
            raise
        raise hint from e
    cls = getattr(module, class_name)
    if not (isinstance(cls, type) and issubclass(cls, StorageBackend)):
        raise StorageError(f"{target} is not a StorageBackend", target=name)
    return cls


def account_backends(account_kind: str) -> list[type[StorageBackend]]:
    """The backend classes serving an account kind's volumes, each once."""
    names = sorted(set(ACCOUNT_KINDS[account_kind].values()))
    return [backend_class(name) for name in names]


def backend_for(
    account_name: str, account_kind: str, volume_kind: VolumeKind, options: dict[str, Any]
) -> StorageBackend:
    """The backend serving the ``volume_kind`` volumes of an account (no I/O is done)."""
    kinds = ACCOUNT_KINDS.get(account_kind)
    if kinds is None:
        raise SpecError(
            f"unknown storage account kind {account_kind!r}"
            f" (known: {', '.join(sorted(ACCOUNT_KINDS))})",
            target="kind",
        )
    return backend_class(kinds[volume_kind]).from_options(account_name, volume_kind, options)

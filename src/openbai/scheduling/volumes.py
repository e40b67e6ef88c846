"""The volumes a cluster or job mounts, as the nodes will mount them.

``azureFileShares`` name their account by ``accountName`` or by the host of ``azureFileUrl``
(``https://acct.file.core.windows.net/logs`` is share ``logs`` of account ``acct``), so the
recipes' job.json files run unchanged against an embedded account of the same name.

``fileServers`` and ``unmanagedFileSystems`` have no storage account: they are named by an
account name no storage account can have (``fileserver:RG/WS/NAME``, ``mount:COMMAND``), which
:func:`account_options` resolves to the NFS export (or SMB share) they mount, so that mounts,
``bai job file list/stream`` and download links reach them like any other volume.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, select

from openbai.errors import MountError, NotFoundError, OpenBaiError, SpecError
from openbai.installation import App
from openbai.plan.job_plan import MountSpec
from openbai.scheduling.locations import MountedVolume
from openbai.spec import (
    AzureBlobFileSystemReference,
    AzureFileShareReference,
    FileServerReference,
    MountVolumes,
    UnmanagedFileSystemReference,
)
from openbai.storage import nfs_command, nfs_endpoints
from openbai.storage.base import VolumeKind
from openbai.storage.nfs_server import EXPORT_PATH, NfsServer, ServerState, file_server_dir
from openbai.storage.registry import mounter_key
from openbai.store.models import StorageAccount


def mounted_volumes(volumes: MountVolumes | None, *, root: str, field: str) -> list[MountedVolume]:
    """The volumes a MountVolumes object names (``field``: its wire path), without asking storage
    whether they exist (``services/volumes.py`` checks that once, when the job or cluster is
    created)."""
    if volumes is None:
        return []
    mounted = []
    for collection, index, ref in volumes.iter_references():
        where = f"{field}.{collection}[{index}]"
        if isinstance(ref, AzureFileShareReference):
            account = ref.account_name or ref.url_account()
            mounted.append(
                MountedVolume(
                    root,
                    ref.relative_mount_path,
                    account,
                    VolumeKind.FILE,
                    ref.share_name,
                    ref.share_subpath,
                )
            )
        elif isinstance(ref, AzureBlobFileSystemReference):
            mounted.append(
                MountedVolume(
                    root,
                    ref.relative_mount_path,
                    ref.account_name,
                    VolumeKind.BLOB,
                    ref.container_name,
                    mount_options=ref.mount_options or "",
                )
            )
        elif isinstance(ref, FileServerReference):
            rg, ws, name = parse_file_server_id(ref.file_server.id, field=f"{where}.fileServer.id")
            mounted.append(
                MountedVolume(
                    root,
                    ref.relative_mount_path,
                    f"{FILE_SERVER_PREFIX}{rg}/{ws}/{name}",
                    VolumeKind.FILE,
                    EXPORT_PATH,
                    source_subpath(ref.source_directory, field=f"{where}.sourceDirectory"),
                    ref.mount_options or "",
                )
            )
        elif isinstance(ref, UnmanagedFileSystemReference):
            # an unknown type fails the job when it starts (AZFMountError), as in Batch AI
            try:
                source = nfs_command.parse_mount_command(ref.mount_command)
                volume, subpath = source.volume, str(source.options.get("subpath") or "")
                options = "ro" if source.read_only else ""
            except MountError:
                volume, subpath, options = "", "", ""
            mounted.append(
                MountedVolume(
                    root,
                    ref.relative_mount_path,
                    nfs_command.PREFIX + ref.mount_command,
                    VolumeKind.FILE,
                    volume,
                    subpath,
                    options,
                )
            )
    return mounted


FILE_SERVER_PREFIX = "fileserver:"
_FILE_SERVER_ID = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.BatchAI"
    r"/workspaces/(?P<ws>[^/]+)/fileServers/(?P<name>[^/]+)/?",
    re.IGNORECASE,
)


def names_no_account(account: str) -> bool:
    """Whether ``account`` names a file server or an unmanaged file system, not a storage
    account (its volume is then an export path, not a container or share name)."""
    return account.startswith((FILE_SERVER_PREFIX, nfs_command.PREFIX))


def file_server_subscription(value: str) -> str | None:
    """The subscription a file server's ARM id names (None: not such an id)."""
    match = _FILE_SERVER_ID.fullmatch(value.strip())
    return None if match is None else match["sub"]


def parse_file_server_id(value: str, *, field: str) -> tuple[str, str, str]:
    """(resource group, workspace, name) of a file server's ARM id."""
    match = _FILE_SERVER_ID.fullmatch(value.strip())
    if match is None:
        raise SpecError(
            f"{field}: {value!r} is not a file server id (/subscriptions/SUB/resourceGroups/RG"
            "/providers/Microsoft.BatchAI/workspaces/WS/fileServers/NAME)",
            target=field,
        )
    return match["rg"], match["ws"], match["name"]


#: a file server by (resource group, workspace, name)
FileServerKey = tuple[str, str, str]


def file_servers_of(volumes: Mapping[str, Any] | None) -> frozenset[FileServerKey]:
    """The file servers a stored spec's ``mountVolumes`` mount (checked when it was created)."""
    found = set()
    for ref in (volumes or {}).get("fileServers") or []:
        found.add(parse_file_server_id(ref["fileServer"]["id"], field="fileServer.id"))
    return frozenset(found)


def source_subpath(source: str | None, *, field: str) -> str:
    """The directory of the export a ``sourceDirectory`` names (``/mnt/data/x`` or ``x``)."""
    from openbai.storage.base import clean_path

    text = (source or "").strip()
    if text == EXPORT_PATH or text.startswith(EXPORT_PATH + "/"):
        text = text[len(EXPORT_PATH) :]
    return clean_path(text.lstrip("/"), field=field)


def account_options(app: App, name: str) -> tuple[str, dict[str, Any]]:
    """The account's kind and every option, secrets unsealed (for backends and node plans)."""
    if name.startswith(FILE_SERVER_PREFIX):
        return "nfs", file_server_options(app, name[len(FILE_SERVER_PREFIX) :])
    if name.startswith(nfs_command.PREFIX):
        stored = name[len(nfs_command.PREFIX) :]

        def password(token: str) -> str:
            try:
                return str(app.sealer.unseal(token)["password"])
            except (OpenBaiError, KeyError, TypeError, ValueError):
                raise MountError(
                    f"{nfs_command.redact(stored)!r}: its sealed password cannot be opened (it"
                    " was not sealed by this installation, or its key was replaced since)"
                ) from None

        command = nfs_command.unseal_passwords(stored, password)
        source = nfs_command.parse_mount_command(command)
        return source.kind, source.options
    row = app.db.first(_ACCOUNT, {"name": name})
    if row is None:
        raise NotFoundError(
            f"storage account {name!r} does not exist",
            code="StorageAccountNotFound",
            target=name,
        )
    return row.kind, {**row.options, **app.sealer.unseal(row.sealed_secrets)}


#: one query, no session: every job create and node plan looks its accounts up
_ACCOUNT = select(StorageAccount.kind, StorageAccount.options, StorageAccount.sealed_secrets).where(
    StorageAccount.name == bindparam("name")
)


def source_host(options: dict[str, Any]) -> str:
    host = str(options.get("host") or options.get("file_endpoint") or "server")
    return re.sub(r"[^\w.:-]", "_", host)


def file_server_exists(app: App, rg: str, ws: str, name: str) -> bool:
    from openbai.store.models import FileServer, Workspace

    with app.db.reading() as s:
        found = s.scalar(
            select(FileServer.id)
            .join(Workspace, FileServer.workspace_id == Workspace.id)
            .where(Workspace.resource_group == rg, Workspace.name == ws, FileServer.name == name)
        )
    return found is not None


def running_file_server(app: App, rg: str, ws: str, name: str) -> ServerState:
    """The state of the file server's NFS server, started again if it went away (a restart
    of the machine); NotFoundError once the file server is deleted, and then no server is
    left running (a delete that came between the check and the start stopped nothing)."""
    gone = NotFoundError(
        f"The specified file server {name} is not found", code="FileServerNotFound", target=name
    )
    if not file_server_exists(app, rg, ws, name):
        raise gone
    server = NfsServer(file_server_dir(app.settings.home, rg, ws, name))
    state = server.ensure_running()
    if not file_server_exists(app, rg, ws, name):
        server.stop()
        raise gone
    return state


def file_server_options(app: App, path: str) -> dict[str, Any]:
    """The NFS options of the file server ``RG/WS/NAME``, its server started if it was not
    (after a restart of the machine)."""
    rg, ws, name = path.split("/", 2)
    state = running_file_server(app, rg, ws, name)
    return {
        "host": state.host,
        "export": EXPORT_PATH,
        "version": 3,
        "port": state.port,
        "mount_port": state.mount_port,
    }


def mount_specs(app: App, mounted: list[MountedVolume]) -> list[MountSpec]:
    specs = []
    for m in mounted:
        if m.account.startswith(nfs_command.PREFIX):
            try:
                kind, options = account_options(app, m.account)
                # checked at create too: a file server created since may have its address
                if kind == "nfs":
                    server = nfs_endpoints.file_server_reached(app.settings.home, options)
                    if server is not None:
                        raise MountError(nfs_endpoints.refusal(options, server))
            except MountError as e:  # fails the job when a node mounts it
                specs.append(
                    MountSpec(
                        m.relative_path,
                        "refused",
                        nfs_command.redact(m.account),
                        m.volume_kind.value,
                        m.volume,
                        options={"reason": e.message},
                    )
                )
                continue
            specs.append(
                MountSpec(
                    m.relative_path,
                    mounter_key(kind, m.volume_kind),
                    # a FUSE fsname: no blanks or commas, no password
                    f"{kind}-{source_host(options)}",
                    m.volume_kind.value,
                    m.volume,
                    m.subpath,
                    options,
                    m.mount_options,
                )
            )
            continue
        try:
            kind, options = account_options(app, m.account)
        except NotFoundError as exc:
            if m.account.startswith(FILE_SERVER_PREFIX):
                what = f"file server {m.account[len(FILE_SERVER_PREFIX) :]}"
            else:
                what = f"storage account {m.account!r}"
            raise NotFoundError(f"{what} of the volume at {m.relative_path!r} was deleted") from exc
        specs.append(
            MountSpec(
                relative_path=m.relative_path,
                backend=mounter_key(kind, m.volume_kind),
                account=m.account,
                volume_kind=m.volume_kind.value,
                volume=m.volume,
                subpath=m.subpath,
                options=options,
                mount_options=m.mount_options,
            )
        )
    return specs


def to_json(mounted: list[MountedVolume]) -> list[dict[str, str]]:
    return [
        {
            "root": m.root,
            "relative_path": m.relative_path,
            "account": m.account,
            "volume_kind": m.volume_kind.value,
            "volume": m.volume,
            "subpath": m.subpath,
            "mount_options": m.mount_options,
        }
        for m in mounted
    ]


def from_json(data: list[dict[str, str]]) -> list[MountedVolume]:
    return [
        MountedVolume(
            d["root"],
            d["relative_path"],
            d["account"],
            VolumeKind(d["volume_kind"]),
            d["volume"],
            d["subpath"],
            d.get("mount_options", ""),  # kept since mountOptions are applied
        )
        for d in data
    ]

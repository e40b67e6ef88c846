"""The volumes a cluster or job mounts, checked against the registered storage accounts once,
when the cluster or job is created (the dispatcher trusts what was checked)."""

from __future__ import annotations

from openbai.errors import ConflictError, MountError, NotFoundError, SpecError
from openbai.installation import App
from openbai.scheduling.locations import MountedVolume, VolumeLocation, locate, mounted_at
from openbai.scheduling.volumes import (
    file_server_subscription,
    mounted_volumes,
    parse_file_server_id,
)
from openbai.services import ids
from openbai.services.accounts import check_account_name, require_volume
from openbai.services.file_servers import file_server_row
from openbai.services.reach import require_installation_owner, require_workspace
from openbai.services.tokens import TokenInfo
from openbai.spec import (
    AzureBlobFileSystemReference,
    AzureFileShareReference,
    FileServerReference,
    MountVolumes,
    UnmanagedFileSystemReference,
)
from openbai.storage import nfs_command, nfs_endpoints
from openbai.storage.registry import MOUNT_ONLY_KINDS
from openbai.vocabulary import ProvisioningState


def resolve_mounts(
    app: App,
    volumes: MountVolumes | None,
    *,
    root: str,
    field: str,
    caller: TokenInfo | None = None,
) -> list[MountedVolume]:
    """The volumes ``volumes`` names; a SpecError naming the field unless each exists, an
    AuthorizationError for a file server in a workspace ``caller``'s token does not reach,
    and for a GlusterFS mount unless ``caller`` is the installation's owner (its client runs
    as root outside any sandbox, loading the translators the named server's volume file
    lists: trusted as a cluster without a sandbox is).

    An account name the request gives must be a storage account's (``bai storage account
    create``'s form): the names openbai gives file servers and unmanaged file systems
    internally (``fileserver:RG/WS/NAME``, ``mount:COMMAND``) would skip the workspace check
    of ``fileServers`` and the checks of ``unmanagedFileSystems``.

    The passwords of ``unmanagedFileSystems`` mount commands are sealed in ``volumes`` first
    (``-o password=sealed:TOKEN``), so that the spec stored and shown, and the volumes' names
    in download links, hold none; the nodes get them back when they mount."""
    if volumes is not None:
        for unmanaged in volumes.unmanaged_file_systems:
            unmanaged.mount_command = nfs_command.seal_passwords(
                unmanaged.mount_command, lambda password: app.sealer.seal({"password": password})
            )
    if volumes is not None:
        _check_account_names(volumes, field=field)
    mounted = mounted_volumes(volumes, root=root, field=field)
    if volumes is None:
        return mounted
    for (collection, index, ref), volume in zip(volumes.iter_references(), mounted, strict=True):
        where = f"{field}.{collection}[{index}]"
        if isinstance(ref, UnmanagedFileSystemReference):
            try:  # a type no node here can mount fails the job when it starts
                nfs_command.check_mount_command(ref.mount_command)
            except MountError as e:
                raise SpecError(
                    f"{where}.mountCommand: {e}", target=f"{where}.mountCommand"
                ) from None
            _check_gluster_caller(caller, ref.mount_command, field=f"{where}.mountCommand")
            check_not_a_file_server(app, ref.mount_command, field=f"{where}.mountCommand")
            continue
        if isinstance(ref, FileServerReference):
            at = "fileServer.id"
            rg, ws, name = parse_file_server_id(ref.file_server.id, field=f"{where}.{at}")
            require_workspace(caller, rg, ws, field=f"{where}.{at}")
            ids.require_this_subscription(
                file_server_subscription(ref.file_server.id),
                app.settings.subscription_id,
                what="file server",
                field=f"{where}.{at}",
                code="FileServerNotFound",
            )
            _require_file_server(app, rg, ws, name, field=f"{where}.{at}")
        elif isinstance(ref, AzureFileShareReference):
            at = "azureFileUrl"
        else:
            at = "containerName"
        require_volume(
            app, volume.account, volume.volume_kind, volume.volume, field=f"{where}.{at}"
        )
    return mounted


def _check_account_names(volumes: MountVolumes, *, field: str) -> None:
    """A SpecError naming the field of an account name no storage account can have (one of
    openbai's internal names, ``fileserver:...`` or ``mount:...``, among them)."""
    for collection, index, ref in volumes.iter_references():
        where = f"{field}.{collection}[{index}]"
        if isinstance(ref, AzureBlobFileSystemReference):
            check_account_name(ref.account_name, field=f"{where}.accountName")
        elif isinstance(ref, AzureFileShareReference):
            if ref.account_name is not None:
                check_account_name(ref.account_name, field=f"{where}.accountName")
            else:
                check_account_name(ref.url_account(), field=f"{where}.azureFileUrl")


def _check_gluster_caller(caller: TokenInfo | None, command: str, *, field: str) -> None:
    """An AuthorizationError naming ``field`` when a GlusterFS mount is asked for by another
    than the installation's owner."""
    try:
        kind = nfs_command.parse_mount_command(command).kind
    except MountError:
        return  # not one openbai mounts: it fails the job when it starts
    if kind == "gluster":
        require_installation_owner(
            caller,
            "a GlusterFS mount (its client runs as root, loading what the named server's"
            " volume file says)",
            field=field,
        )


def check_not_a_file_server(app: App, command: str, *, field: str) -> None:
    """A SpecError naming ``field`` when an unmanaged NFS mount would reach one of the
    installation's file servers (storage/nfs_endpoints.py): those are mounted through
    ``fileServers``, which checks the workspace."""
    try:
        source = nfs_command.parse_mount_command(command)
    except MountError:
        return  # not one openbai mounts: it fails the job when it starts
    if source.kind != "nfs":
        return
    server = nfs_endpoints.file_server_reached(app.settings.home, source.options)
    if server is not None:
        raise SpecError(f"{field}: {nfs_endpoints.refusal(source.options, server)}", target=field)


def _require_file_server(app: App, rg: str, ws: str, name: str, *, field: str) -> None:
    """A SpecError naming ``field`` unless the file server exists; a ConflictError while its
    workspace is being deleted (the delete stops it when it finishes)."""
    with app.db.reading() as s:
        try:
            row = file_server_row(s, rg, ws, name)
        except NotFoundError:
            raise SpecError(
                f"{field}: The specified file server {name} is not found in workspace {ws}",
                target=field,
                code="FileServerNotFound",
            ) from None
        if row.workspace.provisioning_state == ProvisioningState.DELETING:
            raise ConflictError(
                f"{field}: workspace {ws} of file server {name} is being deleted, and its file"
                " servers with it",
                target=field,
                code="ResourceBeingDeleted",
            )


def check_listable(location: VolumeLocation | None, prefix: str, field: str) -> None:
    """A SpecError naming ``field`` when ``prefix`` lies on a volume whose files openbai cannot
    list or stream (a GlusterFS volume, mounted with GlusterFS's own client only)."""
    if location is None or not location.account.startswith(nfs_command.PREFIX):
        return
    try:
        kind = nfs_command.parse_mount_command(location.account[len(nfs_command.PREFIX) :]).kind
    except MountError:
        return  # the job fails when it starts (AZFMountError)
    if kind in MOUNT_ONLY_KINDS:
        raise SpecError(
            f"{field}: {prefix} is on a GlusterFS volume, whose files openbai cannot list or"
            " stream; put it on another volume (an Azure file share, a blob container or a"
            " file server)",
            target=field,
        )


def require_on_volume(
    prefix: str, mounted: list[MountedVolume], field: str, *, mounted_on: str, none_mounted: str
) -> VolumeLocation:
    """Where ``prefix`` lies in storage; a SpecError naming ``field`` when it is on no volume
    in ``mounted`` (``mounted_on`` says whose volumes, ``none_mounted`` what to do when there
    are none): files written there would land on the node's disk, where they could neither be
    listed nor streamed, nor outlive the node."""
    location = locate(prefix, mounted)
    check_listable(location, prefix, field)
    found = mounted_at(prefix, mounted)
    if found is not None and found[0].read_only:
        raise SpecError(
            f"{field}: {prefix} is on {found[0].relative_path!r}, mounted read-only"
            f" (mountOptions {found[0].mount_options!r}): the job could write nothing there",
            target=field,
        )
    if location is not None:
        return location
    roots = [f"${m.root}/{m.relative_path.strip('/')}" for m in mounted]
    where = "one of " + ", ".join(roots) if roots else f"a volume, but {none_mounted}"
    raise SpecError(
        f"{field}: {prefix} is on no volume mounted {mounted_on}; it must be inside {where}",
        target=field,
    )

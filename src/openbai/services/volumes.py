"""The volumes a cluster or job mounts: checked against the registered storage accounts,
and turned into the mount specs of a node plan.

``azureFileShares`` name their account by ``accountName`` or by the host of ``azureFileUrl``
(``https://acct.file.core.windows.net/logs`` is share ``logs`` of account ``acct``), so the
recipes' job.json files run unchanged against an embedded account of the same name.
"""

from __future__ import annotations

from openbai.errors import NotFoundError, SpecError
from openbai.runtime.plan import MountSpec
from openbai.services.accounts import connection_options, require_volume
from openbai.services.app import App
from openbai.services.locations import MountedVolume
from openbai.spec import AzureBlobFileSystemReference, AzureFileShareReference, MountVolumes
from openbai.storage.base import VolumeKind
from openbai.storage.registry import ACCOUNT_KINDS


def resolve_mounts(
    app: App, volumes: MountVolumes | None, *, root: str, field: str
) -> list[MountedVolume]:
    """Check every volume exists; ``field`` is the wire path of the MountVolumes object."""
    if volumes is None:
        return []
    mounted = []
    for collection, index, ref in volumes.iter_references():
        where = f"{field}.{collection}[{index}]"
        if isinstance(ref, AzureFileShareReference):
            account = ref.account_name or ref.url_account()
            require_volume(
                app, account, VolumeKind.FILE, ref.share_name, field=f"{where}.azureFileUrl"
            )
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
            require_volume(
                app,
                ref.account_name,
                VolumeKind.BLOB,
                ref.container_name,
                field=f"{where}.containerName",
            )
            mounted.append(
                MountedVolume(
                    root,
                    ref.relative_mount_path,
                    ref.account_name,
                    VolumeKind.BLOB,
                    ref.container_name,
                )
            )
        else:
            raise SpecError(
                f"{where}: openbai does not mount {collection} yet; use azureFileShares or azureBlobFileSystems",
                target=where,
                code="UnsupportedMount",
            )
    return mounted


def mount_specs(app: App, mounted: list[MountedVolume]) -> list[MountSpec]:
    specs = []
    for m in mounted:
        try:
            kind, options = connection_options(app, m.account)
        except NotFoundError as exc:
            raise NotFoundError(
                f"storage account {m.account!r} of the volume at {m.relative_path!r} was deleted"
            ) from exc
        specs.append(
            MountSpec(
                relative_path=m.relative_path,
                backend=ACCOUNT_KINDS[kind][m.volume_kind],
                account=m.account,
                volume_kind=m.volume_kind.value,
                volume=m.volume,
                subpath=m.subpath,
                options=options,
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
        )
        for d in data
    ]

"""The volumes a cluster or job mounts, as the nodes will mount them.

``azureFileShares`` name their account by ``accountName`` or by the host of ``azureFileUrl``
(``https://acct.file.core.windows.net/logs`` is share ``logs`` of account ``acct``), so the
recipes' job.json files run unchanged against an embedded account of the same name.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from openbai.errors import NotFoundError, SpecError
from openbai.installation import App
from openbai.plan.job_plan import MountSpec
from openbai.scheduling.locations import MountedVolume
from openbai.spec import AzureBlobFileSystemReference, AzureFileShareReference, MountVolumes
from openbai.storage.base import VolumeKind
from openbai.storage.registry import ACCOUNT_KINDS
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
                )
            )
        else:
            raise SpecError(
                f"{where}: openbai does not mount {collection} yet; use azureFileShares or azureBlobFileSystems",
                target=where,
                code="UnsupportedMount",
            )
    return mounted


def account_options(app: App, name: str) -> tuple[str, dict[str, Any]]:
    """The account's kind and every option, secrets unsealed (for backends and node plans)."""
    with app.db.reading() as s:
        row = s.scalar(select(StorageAccount).where(StorageAccount.name == name))
        if row is None:
            raise NotFoundError(
                f"storage account {name!r} does not exist",
                code="StorageAccountNotFound",
                target=name,
            )
        return row.kind, {**row.options, **app.sealer.unseal(row.sealed_secrets)}


def mount_specs(app: App, mounted: list[MountedVolume]) -> list[MountSpec]:
    specs = []
    for m in mounted:
        try:
            kind, options = account_options(app, m.account)
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

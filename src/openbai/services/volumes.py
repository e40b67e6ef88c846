"""The volumes a cluster or job mounts, checked against the registered storage accounts once,
when the cluster or job is created (the dispatcher trusts what was checked)."""

from __future__ import annotations

from openbai.installation import App
from openbai.scheduling.locations import MountedVolume
from openbai.scheduling.volumes import mounted_volumes
from openbai.services.accounts import require_volume
from openbai.spec import AzureFileShareReference, MountVolumes


def resolve_mounts(
    app: App, volumes: MountVolumes | None, *, root: str, field: str
) -> list[MountedVolume]:
    """The volumes ``volumes`` names; a SpecError naming the field unless each exists."""
    mounted = mounted_volumes(volumes, root=root, field=field)
    if volumes is None:
        return mounted
    for (collection, index, ref), volume in zip(volumes.iter_references(), mounted, strict=True):
        where = f"{field}.{collection}[{index}]"
        at = "azureFileUrl" if isinstance(ref, AzureFileShareReference) else "containerName"
        require_volume(
            app, volume.account, volume.volume_kind, volume.volume, field=f"{where}.{at}"
        )
    return mounted

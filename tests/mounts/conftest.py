"""Fixtures for mount tests: FUSE availability, a blob backend on Azurite, a mount helper,
and a session-end check that no openbai mount is left behind (``findmnt``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from azurite_fixture import Azurite

from openbai.mounts.base import Mount
from openbai.mounts.fuse import FuseMounter
from openbai.mounts.settings import MountSettings
from openbai.plan.job_plan import MountSpec
from openbai.storage.azure_blob import AzureBlobStorage
from openbai.storage.base import VolumeKind

#: quick commits and a short last-chance retry, so that tests stay fast
FAST = MountSettings(commit_interval=1.0, listing_ttl=1.0, flush_timeout=20.0, copy_interval=0.5)


def openbai_mounts() -> set[str]:
    """Mount points of openbai FUSE mounts on this machine."""
    out = subprocess.run(
        ["findmnt", "-rn", "-o", "TARGET,FSTYPE"], capture_output=True, text=True, check=False
    ).stdout
    return {line.split()[0] for line in out.splitlines() if line.endswith("fuse.openbai")}


@pytest.fixture(scope="session", autouse=True)
def nothing_left_mounted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """At the end of the session, no openbai mount is left in this session's directories."""
    base = str(tmp_path_factory.getbasetemp())
    yield
    left = {point for point in openbai_mounts() if point.startswith(base)}
    for point in left:
        subprocess.run(["fusermount3", "-u", "-z", point], check=False)
    assert not left, f"the tests left openbai mounts behind: {sorted(left)}"


@pytest.fixture
def fuse() -> None:
    """Skip (fail in CI) where FUSE cannot be used."""
    usable = (
        os.path.exists("/dev/fuse")
        and os.access("/dev/fuse", os.R_OK | os.W_OK)
        and shutil.which("fusermount3")
    )
    if not usable:
        reason = "needs /dev/fuse and fusermount3 (apt-get install fuse3)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def blob_options(azurite: Azurite, **extra: object) -> dict[str, object]:
    return {"connection_string": azurite.connection_string, **extra}


@pytest.fixture
def blob(azurite: Azurite) -> Iterator[AzureBlobStorage]:
    backend = AzureBlobStorage.from_options(
        azurite.account_name, VolumeKind.BLOB, blob_options(azurite)
    )
    yield backend
    backend.close()


@pytest.fixture
def container(blob: AzureBlobStorage) -> Iterator[str]:
    name = f"m-{uuid.uuid4().hex[:12]}"
    blob.create_volume(name)
    yield name
    blob.delete_volume(name)


def blob_spec(azurite: Azurite, container: str, **options: object) -> MountSpec:
    return MountSpec(
        relative_path="data",
        backend="azure_blob",
        account=azurite.account_name,
        volume_kind="blob",
        volume=container,
        options=blob_options(azurite, **options),
    )


MountIt = Callable[..., Mount]


@pytest.fixture
def mount_blob(fuse: None, azurite: Azurite, container: str, tmp_path: Path) -> Iterator[MountIt]:
    """``mount_blob()`` mounts ``container`` at a fresh directory; unmounted at the end."""
    mounts: list[Mount] = []

    def mount(settings: MountSettings = FAST, **options: object) -> Mount:
        target = tmp_path / f"mnt{len(mounts)}" / "data"
        done = FuseMounter(settings).mount(blob_spec(azurite, container, **options), target, print)
        mounts.append(done)
        return done

    yield mount
    for done in mounts:
        try:
            done.unmount()
        except Exception:  # a test that expects a failed unmount already checked it
            pass

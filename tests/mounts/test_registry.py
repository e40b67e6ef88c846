"""The mounter registry: every entry imports, and FUSE-less nodes get copy mode."""

from __future__ import annotations

import pytest

from openbai.errors import MountError
from openbai.mounts.base import Mounter
from openbai.mounts.copy import CopyMounter
from openbai.mounts.fuse import FuseMounter
from openbai.mounts.registry import MOUNTERS, fuse_unavailable, mounter_for
from openbai.mounts.settings import MountSettings


def test_table_is_sorted_and_every_entry_imports() -> None:
    assert list(MOUNTERS) == sorted(MOUNTERS)
    for name in MOUNTERS:
        assert isinstance(mounter_for(name, MountSettings(disable_fuse=False)), Mounter)


def test_blob_containers_and_shares_are_mounted_with_fuse_where_it_works() -> None:
    settings = MountSettings()
    if fuse_unavailable(settings) is not None:
        pytest.skip("no FUSE here")
    assert isinstance(mounter_for("azure_blob", settings), FuseMounter)
    assert isinstance(mounter_for("smb", settings), FuseMounter)


def test_without_fuse_volumes_are_copied_and_the_reason_is_given() -> None:
    settings = MountSettings.from_env({"OPENBAI_DISABLE_FUSE": "1"})
    mounter = mounter_for("azure_blob", settings)
    assert isinstance(mounter, CopyMounter)
    assert "OPENBAI_DISABLE_FUSE=1" in mounter.reason


def test_settings_come_from_the_environment() -> None:
    settings = MountSettings.from_env(
        {
            "OPENBAI_MOUNT_COMMIT_INTERVAL": "0.5",
            "OPENBAI_MOUNT_FLUSH_TIMEOUT": "7",
            "OPENBAI_MOUNT_MD5_UP_TO": "1e12",
        }
    )
    assert settings.commit_interval == 0.5 and settings.flush_timeout == 7
    assert settings.md5_up_to == 10**12
    assert not settings.disable_fuse


def test_unknown_backend() -> None:
    with pytest.raises(MountError, match="nope"):
        mounter_for("nope")

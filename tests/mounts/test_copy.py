"""Copy mode (no FUSE): inputs copied in first, outputs copied back while running and at the end."""

from __future__ import annotations

from pathlib import Path

import pytest
from azurite_fixture import Azurite, AzuriteProcess, require_node
from polling import wait_until

from openbai.errors import MountError, NotFoundError
from openbai.mounts.copy import CopyMounter
from openbai.storage.azure_blob import AzureBlobStorage
from openbai.storage.base import VolumeKind

from .conftest import FAST, blob_spec

pytestmark = pytest.mark.azurite


def stored(blob: AzureBlobStorage, container: str, path: str) -> bytes | None:
    try:
        return blob.read(container, path)
    except NotFoundError:
        return None


def test_copy_mode_round_trip(
    azurite: Azurite, blob: AzureBlobStorage, container: str, tmp_path: Path
) -> None:
    source = tmp_path / "in.txt"
    source.write_text("input")
    blob.upload(container, "inputs/a.txt", source)
    blob.upload(container, "old.txt", source)
    logged: list[str] = []
    target = tmp_path / "mnt" / "data"
    mount = CopyMounter(FAST, reason="no FUSE here").mount(
        blob_spec(azurite, container), target, logged.append
    )
    assert "no FUSE here: copy mode" in logged[0]
    assert (target / "inputs" / "a.txt").read_text() == "input"
    (target / "out").mkdir()
    (target / "out" / "progress.txt").write_text("epoch 1\n")
    (target / "old.txt").unlink()
    wait_until(
        lambda: stored(blob, container, "out/progress.txt") == b"epoch 1\n", "progress synced", 5.0
    )
    wait_until(lambda: stored(blob, container, "old.txt") is None, "deletion synced", 5.0)
    (target / "out" / "model.bin").write_bytes(b"weights")
    (target / "out" / "progress.txt").write_text("epoch 1\nepoch 2\n")
    mount.unmount()
    assert blob.read(container, "out/model.bin") == b"weights"
    assert blob.read(container, "out/progress.txt") == b"epoch 1\nepoch 2\n"
    assert not target.exists()


def test_copy_mode_fails_loudly_when_outputs_cannot_be_stored(tmp_path: Path) -> None:
    require_node()
    process = AzuriteProcess(tmp_path / "azurite")
    azurite = process.start()
    try:
        backend = AzureBlobStorage.from_options(
            azurite.account_name, VolumeKind.BLOB, {"connection_string": azurite.connection_string}
        )
        backend.create_volume("out")
        backend.close()
        settings = FAST._replace(flush_timeout=2.0, copy_interval=60.0)
        target = tmp_path / "mnt" / "out"
        mount = CopyMounter(settings, reason="test").mount(
            blob_spec(azurite, "out", retry_total=0), target, print
        )
        (target / "result.txt").write_text("the result")
        process.stop()
        with pytest.raises(MountError, match="result.txt"):
            mount.unmount()
        assert not target.exists()
    finally:
        process.stop()


def test_missing_container_is_a_mount_error(azurite: Azurite, tmp_path: Path) -> None:
    with pytest.raises(MountError):
        CopyMounter(FAST, reason="test").mount(
            blob_spec(azurite, "no-such-container"), tmp_path / "data", print
        )


def test_a_copy_whose_folders_the_job_moved_stores_back_and_removes_only_itself(
    azurite: Azurite, blob: AzureBlobStorage, container: str, tmp_path: Path
) -> None:
    """The job owns the folders on the way to its copy: it may move them and put a link to
    a host folder in their place. What is stored back and removed is the copy itself, not
    what the path leads to then."""
    mounts = tmp_path / "job" / "mounts"
    target = mounts / "data"
    mount = CopyMounter(FAST, reason="no FUSE here").mount(
        blob_spec(azurite, container), target, lambda _: None
    )
    (target / "result.txt").write_text("the job's\n")
    victim = tmp_path / "host"
    (victim / "data").mkdir(parents=True)
    (victim / "data" / "secret.txt").write_text("root's\n")
    mounts.rename(tmp_path / "job" / "moved")
    mounts.symlink_to(victim, target_is_directory=True)
    mount.unmount()
    assert blob.read(container, "result.txt") == b"the job's\n"
    assert stored(blob, container, "secret.txt") is None
    assert (victim / "data" / "secret.txt").read_text() == "root's\n"
    assert not (tmp_path / "job" / "moved" / "data").exists()  # the copy, removed

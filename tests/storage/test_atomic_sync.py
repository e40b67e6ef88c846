"""Syncing the file systems a job or a transfer wrote to, each once."""

from __future__ import annotations

import os
from pathlib import Path

from openbai.storage.atomic import sync_filesystems


def test_each_filesystem_is_synced_once_and_missing_paths_are_left_out(tmp_path: Path) -> None:
    temp, volume = tmp_path / "temp", tmp_path / "volume"
    temp.mkdir()
    volume.mkdir()
    shm = Path("/dev/shm")  # another filesystem (tmpfs) on these machines

    synced = sync_filesystems([temp, volume, tmp_path / "gone", shm])

    assert synced == {os.stat(tmp_path).st_dev, os.stat(shm).st_dev}

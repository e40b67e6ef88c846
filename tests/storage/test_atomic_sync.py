"""Syncing the file systems a job or a transfer wrote to, each once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from openbai.storage.atomic import atomic_target, sync_filesystems


def test_each_filesystem_is_synced_once_and_missing_paths_are_left_out(tmp_path: Path) -> None:
    temp, volume = tmp_path / "temp", tmp_path / "volume"
    temp.mkdir()
    volume.mkdir()
    shm = Path("/dev/shm")  # another filesystem (tmpfs) on these machines

    synced = sync_filesystems([temp, volume, tmp_path / "gone", shm])

    assert synced == {os.stat(tmp_path).st_dev, os.stat(shm).st_dev}


def test_an_error_names_the_target_not_the_hidden_file_it_was_written_as(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.txt").mkdir()  # a folder where the file goes
    with pytest.raises(IsADirectoryError) as raised:
        with atomic_target(tmp_path / "a.txt") as tmp:
            tmp.write_bytes(b"x")
    assert raised.value.filename == str(tmp_path / "a.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]  # nothing left behind

"""What closing a file costs the mount: the kernel sends FUSE's FLUSH on every close(2) unless
``open`` says it is not needed (FOPEN_NOFLUSH); only a file written here has anything to
publish at close."""

from __future__ import annotations

import os
import time
from pathlib import Path

from openbai.mounts.fusefs import VolumeFS
from openbai.storage.azure_blob import AzureBlobStorage


def test_only_files_written_here_are_flushed_at_close(
    blob: AzureBlobStorage, container: str, tmp_path: Path
) -> None:
    source = tmp_path / "stored.txt"
    source.write_bytes(b"stored before the mount")
    blob.upload(container, "stored.txt", source)
    fs = VolumeFS(blob, container)
    try:
        reader = fs.open("/stored.txt", os.O_RDONLY)
        assert fs.read("", 6, 0, reader) == b"stored"
        assert not fs.flushes(reader)
        fs.release("", reader)

        writer = fs.create("/new.txt", 0o644)
        fs.write(None, b"written here", 0, writer)
        # a second opener reads it back through its writer: its close may publish it
        reader_of_new = fs.open("/new.txt", os.O_RDONLY)
        assert fs.flushes(writer) and fs.flushes(reader_of_new)
        fs.flush("", writer)
        fs.release("", reader_of_new)
        fs.release("", writer)
        assert blob.read(container, "new.txt") == b"written here"
    finally:
        assert fs.finish(time.monotonic() + 10) == []

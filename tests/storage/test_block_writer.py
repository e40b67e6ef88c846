"""BlockFileWriter on a real block store (Azurite): commits racing with parallel staging, and
the Content-MD5 of sequentially written blobs."""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Iterator

import pytest
from azurite_fixture import Azurite

from openbai.errors import OpenBaiError
from openbai.storage.azure_blob import AzureBlobStorage
from openbai.storage.base import VolumeKind

pytestmark = pytest.mark.azurite

MiB = 1024 * 1024


@pytest.fixture
def blob(azurite: Azurite) -> Iterator[AzureBlobStorage]:
    backend = AzureBlobStorage.from_options(
        azurite.account_name, VolumeKind.BLOB, {"connection_string": azurite.connection_string}
    )
    yield backend
    backend.close()


@pytest.fixture
def volume(blob: AzureBlobStorage) -> Iterator[str]:
    name = f"w-{uuid.uuid4().hex[:12]}"
    blob.create_volume(name)
    yield name
    blob.delete_volume(name)


def test_commits_while_blocks_are_staged_lose_nothing(blob: AzureBlobStorage, volume: str) -> None:
    """A commit drops staged blocks it does not list: blocks of writes made while a commit is
    on its way must not be counted as stored (this was the intermittent EIO of big writes)."""
    data = os.urandom(64 * MiB + 4321)
    writer = blob.open_writer(volume, "big.bin", truncate=True)
    stop, errors = threading.Event(), []

    def commit_often() -> None:  # the mount's periodic commit, far more often
        while not stop.wait(0.01):
            try:
                writer.flush()
            except OpenBaiError as e:
                errors.append(e)

    committer = threading.Thread(target=commit_often)
    committer.start()
    try:
        for offset in range(0, len(data), 128 * 1024):
            writer.write(offset, data[offset : offset + 128 * 1024])
    finally:
        stop.set()
        committer.join()
    writer.close()
    assert errors == []
    assert blob.read(volume, "big.bin") == data


def test_sequentially_written_blob_gets_its_md5(blob: AzureBlobStorage, volume: str) -> None:
    data = os.urandom(20 * MiB + 17)
    writer = blob.open_writer(volume, "seq.bin", truncate=True)
    for offset in range(0, len(data), MiB):
        writer.write(offset, data[offset : offset + MiB])
        if offset == 4 * MiB:  # a commit of a part carries the MD5 of that part
            writer.flush()
            part = blob.stat(volume, "seq.bin")
            assert part.md5 == hashlib.md5(data[: part.size]).hexdigest()
    writer.close()
    assert blob.stat(volume, "seq.bin").md5 == hashlib.md5(data).hexdigest()


def test_rewritten_blob_has_no_stale_md5(blob: AzureBlobStorage, volume: str) -> None:
    writer = blob.open_writer(volume, "r.bin", truncate=True)
    writer.write(0, b"hello world")
    writer.close()
    assert blob.stat(volume, "r.bin").md5 == hashlib.md5(b"hello world").hexdigest()
    writer = blob.open_writer(volume, "r.bin")
    writer.write(0, b"J")
    writer.close()
    assert blob.read(volume, "r.bin") == b"Jello world"
    assert blob.stat(volume, "r.bin").md5 is None
    writer = blob.open_writer(volume, "r.bin", truncate=True)  # emptied: sequential again
    writer.write(0, b"new")
    writer.write(3, b" text")
    writer.close()
    assert blob.stat(volume, "r.bin").md5 == hashlib.md5(b"new text").hexdigest()

"""AzureBlobStorage against Azurite: the conformance suite plus Azure-only behaviour."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from azurite_fixture import Azurite, AzuriteProcess, require_node

from openbai.errors import BackendUnavailableError, PermissionDeniedError, SpecError, StorageError
from openbai.storage.azure_blob import AzureBlobStorage
from openbai.storage.base import VolumeKind
from openbai.storage.blob_rest import FileRange
from openbai.storage.registry import backend_for
from openbai.storage.transfer import file_md5

from .conformance import StorageConformance, new_volume_name, write
from .writer_conformance import WriterConformance

pytestmark = pytest.mark.azurite


@pytest.fixture
def backend(azurite: Azurite) -> Iterator[AzureBlobStorage]:
    built = backend_for(
        "devstoreaccount1",
        "azure",
        VolumeKind.BLOB,
        {"connection_string": azurite.connection_string},
    )
    assert isinstance(built, AzureBlobStorage)
    yield built
    built.close()


class TestAzureBlobStorage(StorageConformance, WriterConformance):
    pass


def test_account_key_and_endpoint_options(azurite: Azurite) -> None:
    backend = AzureBlobStorage.from_options(
        "ignored",
        VolumeKind.BLOB,
        {
            "account_name": azurite.account_name,
            "account_key": azurite.account_key,
            "blob_endpoint": azurite.blob_endpoint,
        },
    )
    backend.list_volumes()
    backend.close()


def test_constructor_does_no_io() -> None:
    backend = AzureBlobStorage.from_options(
        "acct", VolumeKind.BLOB, {"account_key": "a2V5", "blob_endpoint": "http://127.0.0.1:9/x"}
    )
    assert backend.blob_endpoint == "http://127.0.0.1:9/x"


def test_options_are_checked() -> None:
    with pytest.raises(SpecError):
        AzureBlobStorage.from_options("acct", VolumeKind.BLOB, {})
    with pytest.raises(SpecError):
        AzureBlobStorage.from_options("acct", VolumeKind.FILE, {"account_key": "a2V5"})


def test_upload_stores_content_md5(backend: AzureBlobStorage, tmp_path: Path) -> None:
    volume = backend.create_volume(new_volume_name()).name
    try:
        source = write(tmp_path / "f", b"hello" * 1000)
        info = backend.upload(volume, "f", source)
        assert info.md5 == file_md5(source)
        assert backend.stat(volume, "f").md5 == info.md5
        assert next(iter(backend.list_dir(volume))).md5 == info.md5
    finally:
        backend.delete_volume(volume)


def test_large_file_goes_in_parallel_blocks(backend: AzureBlobStorage, tmp_path: Path) -> None:
    data = bytes(range(256)) * (4096 * 20 + 7)  # ~20 MiB: above the single-put size
    source = write(tmp_path / "big", data)
    volume = backend.create_volume(new_volume_name()).name
    try:
        info = backend.upload(volume, "big", source)
        # as az: not hashed unless asked; the source's mtime is kept (to the microsecond)
        mtime_us = source.stat().st_mtime_ns // 1000
        assert info.size == len(data) and info.md5 is None
        stat = backend.stat(volume, "big")
        assert stat.md5 is None and stat.modified == info.modified
        assert stat.modified is not None
        assert stat.modified.timestamp() * 1e6 == pytest.approx(mtime_us, abs=1)
        backend.validate_content = True
        assert backend.upload(volume, "checked", source).md5 == file_md5(source)
        assert backend.stat(volume, "checked").md5 == file_md5(source)
        backend.download(volume, "big", tmp_path / "back")
        assert (tmp_path / "back").read_bytes() == data
        assert backend.read(volume, "big", 10 * 2**20, 100) == data[10 * 2**20 : 10 * 2**20 + 100]
    finally:
        backend.delete_volume(volume)


def test_read_into_fills_the_callers_buffer(backend: AzureBlobStorage, tmp_path: Path) -> None:
    """A mount's read-ahead receives ranges into buffers it reuses: every byte lands at its
    place, a range over the end fills only what the blob has, an empty blob gives 0."""
    data = bytes(range(256)) * 4000
    volume = backend.create_volume(new_volume_name()).name
    try:
        backend.upload(volume, "f", write(tmp_path / "f", data))
        backend.upload(volume, "empty", write(tmp_path / "empty", b""))
        buffer = bytearray(b"x" * 5000)
        assert backend.read_into(volume, "f", 1000, memoryview(buffer)[:4000]) == 4000
        assert buffer[:4000] == data[1000:5000] and buffer[4000:] == b"x" * 1000
        assert backend.read_into(volume, "f", len(data) - 10, memoryview(buffer)) == 10
        assert buffer[:10] == data[-10:]
        assert backend.read_into(volume, "empty", 0, memoryview(buffer)) == 0
    finally:
        backend.delete_volume(volume)


def test_lean_listing_follows_pages_and_reads_what_the_sdk_reads(
    backend: AzureBlobStorage, tmp_path: Path
) -> None:
    """A tree transfer lists through blob_rest.py: every page, the same sizes, times and
    MD5s as the SDK's listing (its stat of each blob)."""
    volume = backend.create_volume(new_volume_name()).name
    try:
        names = [f"d/{i}.txt" for i in range(5)] + ["d/sp ace+%.txt", "top.txt"]
        for i, name in enumerate(names):
            backend.upload(volume, name, write(tmp_path / str(i), "x" * i))
        rest = backend._rest()
        paged = [b.name for b in rest.list_blobs(volume, "d/", page_size=2)]
        assert paged == sorted(n for n in names if n.startswith("d/"))
        listed = {info.path: info for info in backend.list_dir(volume, "", recursive=True)}
        assert set(listed) == set(names)
        for name in names:
            assert listed[name] == backend.stat(volume, name)
    finally:
        backend.delete_volume(volume)


def test_a_block_sent_from_a_file_that_got_shorter_fails_clearly(
    backend: AzureBlobStorage, tmp_path: Path
) -> None:
    """Blocks of a big unhashed upload are sent by the kernel from the file (sendfile): a
    file cut short under it is an error naming the blob, not a hung request, and the
    connection is not reused half-sent."""
    volume = backend.create_volume(new_volume_name()).name
    source = write(tmp_path / "f", b"x" * 1000)
    try:
        rest = backend._rest()
        with open(source, "rb") as f:
            rest.put_block(volume, "b", "block-1", FileRange(f.fileno(), 0, 1000))
            with pytest.raises(StorageError, match="got shorter"):
                rest.put_block(volume, "b", "block-2", FileRange(f.fileno(), 500, 1000))
        rest.put_block_list(volume, "b", ["block-1"], md5=None, content_type="text/plain")
        assert backend.read(volume, "b") == b"x" * 1000
    finally:
        backend.delete_volume(volume)


def test_wrong_key_is_permission_denied(azurite: Azurite) -> None:
    wrong = Azurite(azurite.blob_endpoint, account_key="d3Jvbmcga2V5")
    backend = AzureBlobStorage.from_options(
        "devstoreaccount1", VolumeKind.BLOB, {"connection_string": wrong.connection_string}
    )
    with pytest.raises(PermissionDeniedError):
        backend.list_volumes()
    # a tree transfer's questions go through blob_rest.py with a SAS signed by the key
    with pytest.raises(PermissionDeniedError):
        backend.stat("anything", "")
    with pytest.raises(PermissionDeniedError):
        list(backend.list_dir("anything", "", recursive=True))


def test_unreachable_service_is_backend_unavailable() -> None:
    backend = AzureBlobStorage.from_options(
        "devstoreaccount1",
        VolumeKind.BLOB,
        {
            "account_key": "a2V5",
            "blob_endpoint": "http://127.0.0.1:9/devstoreaccount1",
            "retry_total": 0,
        },
    )
    with pytest.raises(BackendUnavailableError):
        backend.list_volumes()


def test_rides_out_a_short_outage(tmp_path: Path) -> None:
    """A call made while the service is down succeeds once it is back (retry policy)."""
    require_node()
    process = AzuriteProcess(tmp_path / "azurite")
    azurite = process.start()
    backend = AzureBlobStorage.from_options(
        "devstoreaccount1", VolumeKind.BLOB, {"connection_string": azurite.connection_string}
    )
    try:
        backend.create_volume("survivor")
        process.stop()
        back = threading.Event()

        def come_back() -> None:
            back.set()  # before: the call may get its answer while start() still checks
            process.start()

        restart = threading.Timer(4.0, come_back)
        restart.start()
        assert not back.is_set()  # the call below starts while the service is down ...
        assert [v.name for v in backend.list_volumes()] == ["survivor"]
        assert back.is_set()  # ... and got its answer once it was restarted
        restart.join()
    finally:
        backend.close()
        process.stop()

"""``bai storage blob upload-batch`` / ``download-batch`` on an Azure account (Azurite).

What users rely on from the bulk path (blob_rest.py under azure_blob.py): a re-run skips
what is there (size + the MD5 stored on each blob), a changed file of equal size is sent
again, an interrupted run resumes, big files go in blocks and keep their MD5, a SAS works as
the credential, and the store's hiccups are ridden out.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.storage.blob import (
    AccountSasPermissions,
    BlobServiceClient,
    ResourceTypes,
    generate_account_sas,
)
from azurite_fixture import Azurite, AzuriteProcess, require_node
from conftest import Bai

from openbai.errors import PermissionDeniedError, StorageError
from openbai.storage.azure_blob import AzureBlobStorage
from openbai.storage.base import VolumeKind
from openbai.storage.transfer import file_md5

from .conformance import write

pytestmark = pytest.mark.azurite
MiB = 1024 * 1024


@pytest.fixture
def container(bai: Bai, azurite: Azurite) -> str:
    """A fresh container of the account ``acct`` (Azurite), registered through the CLI."""
    bai("storage", "account", "create", "-n", "acct", "--kind", "azure",
        "--connection-string", azurite.connection_string)  # fmt: skip
    name = f"t-{uuid.uuid4().hex[:12]}"
    bai("storage", "container", "create", "--account", "acct", "-n", name)
    return name


def upload(bai: Bai, container: str, source: Path, *extra: str) -> dict[str, int]:
    result = bai.json("storage", "blob", "upload-batch", "--account", "acct", "-d", container,
                      "-s", str(source), *extra)  # fmt: skip
    assert isinstance(result, dict)
    return result


def stored_md5s(azurite: Azurite, container: str) -> dict[str, str]:
    """The content MD5 of each blob; a big one sent without (no --validate-content) has its
    source's mtime in its metadata instead, given here as ``mtime:NS``."""
    client = BlobServiceClient.from_connection_string(azurite.connection_string)
    md5s = {}
    for blob in client.get_container_client(container).list_blobs(include=["metadata"]):
        if blob.content_settings.content_md5 is None:
            md5s[str(blob.name)] = f"mtime:{blob.metadata['openbai_mtime_ns']}"
        else:
            md5s[str(blob.name)] = bytes(blob.content_settings.content_md5).hex()
    return md5s


def test_rerun_skips_unchanged_and_resends_a_changed_file_of_equal_size(
    bai: Bai, azurite: Azurite, container: str, tmp_path: Path
) -> None:
    source = tmp_path / "data"
    for i in range(30):
        write(source / f"d{i % 3}" / f"{i}.bin", os.urandom(1000 + i))
    write(source / "big.bin", os.urandom(9 * MiB + 5))  # above one Put Blob: in blocks

    first = upload(bai, container, source)
    assert (first["filesTransferred"], first["filesSkipped"], first["filesFailed"]) == (31, 0, 0)
    md5s = stored_md5s(azurite, container)
    big_mtime = f"mtime:{(source / 'big.bin').stat().st_mtime_ns}"
    assert md5s == {
        **{p.relative_to(source).as_posix(): file_md5(p) for p in source.rglob("*.bin")},
        "big.bin": big_mtime,
    }

    again = upload(bai, container, source)
    assert (again["filesTransferred"], again["filesSkipped"]) == (0, 31)

    changed = source / "d1" / "4.bin"
    changed.write_bytes(os.urandom(changed.stat().st_size))  # same size, new bytes
    third = upload(bai, container, source)
    assert (third["filesTransferred"], third["filesSkipped"]) == (1, 30)
    assert stored_md5s(azurite, container)["d1/4.bin"] == file_md5(changed)
    big = source / "big.bin"
    big.write_bytes(os.urandom(big.stat().st_size))  # same size, new bytes (and a new mtime)
    fourth = upload(bai, container, source)
    assert (fourth["filesTransferred"], fourth["filesSkipped"]) == (1, 30)
    assert stored_md5s(azurite, container)["big.bin"] == f"mtime:{big.stat().st_mtime_ns}"

    back = tmp_path / "back"
    bai("storage", "blob", "download-batch", "--account", "acct", "-s", container,
        "-d", str(back))  # fmt: skip
    for path in source.rglob("*.bin"):
        assert (back / path.relative_to(source)).read_bytes() == path.read_bytes()
    down_again = bai.json("storage", "blob", "download-batch", "--account", "acct",
                          "-s", container, "-d", str(back))  # fmt: skip
    assert (down_again["filesTransferred"], down_again["filesSkipped"]) == (0, 31)


def test_an_interrupted_upload_resumes(
    bai: Bai, bai_env: dict[str, str], azurite: Azurite, container: str, tmp_path: Path
) -> None:
    """Ctrl-C part-way; the re-run sends only what is missing, and everything arrives whole."""
    source = tmp_path / "data"
    for i in range(600):
        write(source / f"{i:04d}.bin", os.urandom(2000))
    argv = [str(Path(sys.executable).parent / "bai"), "storage", "blob", "upload-batch",
            "--account", "acct", "-d", container, "-s", str(source), "--max-connections", "1",
            "--no-progress"]  # fmt: skip
    process = subprocess.Popen(argv, env={**os.environ, **bai_env}, stdout=subprocess.PIPE)
    client = BlobServiceClient.from_connection_string(azurite.connection_string)
    blobs = client.get_container_client(container)
    try:
        while process.poll() is None and sum(1 for _ in blobs.list_blob_names()) < 50:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
    finally:
        process.communicate(timeout=120)
    present = set(blobs.list_blob_names())
    assert present  # the first run got somewhere

    resumed = upload(bai, container, source)
    assert resumed["filesSkipped"] == len(present)
    assert resumed["filesTransferred"] == 600 - len(present)
    md5s = stored_md5s(azurite, container)
    assert md5s == {p.name: file_md5(p) for p in source.iterdir()}


def test_an_account_with_a_sas_connection_string(azurite: Azurite, tmp_path: Path) -> None:
    key_client = BlobServiceClient.from_connection_string(azurite.connection_string)
    name = f"t-{uuid.uuid4().hex[:12]}"
    key_client.create_container(name)
    sas = generate_account_sas(
        azurite.account_name,
        azurite.account_key,
        resource_types=ResourceTypes(container=True, object=True),
        permission=AccountSasPermissions(read=True, write=True, list=True, create=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    backend = AzureBlobStorage.from_options(
        "acct",
        VolumeKind.BLOB,
        {"connection_string": f"BlobEndpoint={azurite.blob_endpoint};SharedAccessSignature={sas}"},
    )
    try:
        source = write(tmp_path / "f.txt", b"through a SAS")
        info = backend.upload(name, "dir/f.txt", source)
        assert info.md5 == file_md5(source)
        backend.download(name, "dir/f.txt", tmp_path / "back.txt")
        assert (tmp_path / "back.txt").read_bytes() == b"through a SAS"
    finally:
        backend.close()
        key_client.delete_container(name)


def test_empty_and_small_blobs_download_whole(azurite: Azurite, tmp_path: Path) -> None:
    backend = AzureBlobStorage.from_options(
        "acct", VolumeKind.BLOB, {"connection_string": azurite.connection_string}
    )
    volume = backend.create_volume(f"t-{uuid.uuid4().hex[:12]}").name
    try:
        for name, data in {"empty": b"", "one": b"1", "block": os.urandom(8 * MiB)}.items():
            backend.upload(volume, name, write(tmp_path / name, data))
            backend.download(volume, name, tmp_path / f"{name}.back")
            assert (tmp_path / f"{name}.back").read_bytes() == data
    finally:
        backend.delete_volume(volume)
        backend.close()


def test_a_wrong_key_is_permission_denied_on_upload(azurite: Azurite, tmp_path: Path) -> None:
    wrong = Azurite(azurite.blob_endpoint, account_key="d3Jvbmcga2V5")
    backend = AzureBlobStorage.from_options(
        "acct", VolumeKind.BLOB, {"connection_string": wrong.connection_string}
    )
    with pytest.raises(PermissionDeniedError):
        backend.upload("whatever", "f", write(tmp_path / "f", b"x"))


def test_a_name_in_no_encoding_is_one_failed_file(
    bai: Bai, container: str, azurite: Azurite, tmp_path: Path
) -> None:
    """A local name that is not UTF-8 (a blob name must be) fails alone; the rest goes up."""
    source = tmp_path / "src"
    source.mkdir()
    for i in range(3):
        write(source / f"ok{i}.txt", b"fine")
    with open(os.path.join(os.fsencode(source), b"bad\xff.txt"), "wb") as f:
        f.write(b"latin-1 name")
    done = bai("storage", "blob", "upload-batch", "--account", "acct", "-d", container,
               "-s", str(source), "-o", "json", expect=1)  # fmt: skip
    report = json.loads(done.stdout)
    assert (report["filesTransferred"], report["filesFailed"]) == (3, 1)
    (failure,) = report["failures"]
    assert "not valid UTF-8" in failure["error"]
    assert sorted(stored_md5s(azurite, container)) == ["ok0.txt", "ok1.txt", "ok2.txt"]


def test_uploads_ride_out_a_short_outage(tmp_path: Path) -> None:
    """The store goes away between two uploads and is back within the retries."""
    require_node()
    process = AzuriteProcess(tmp_path / "azurite")
    azurite = process.start()
    backend = AzureBlobStorage.from_options(
        "acct", VolumeKind.BLOB, {"connection_string": azurite.connection_string}
    )
    try:
        backend.create_volume("survivor")
        backend.upload("survivor", "before", write(tmp_path / "before", b"1"))
        process.stop()
        restart = threading.Timer(3.0, process.start)
        restart.start()
        info = backend.upload("survivor", "during", write(tmp_path / "during", b"22"))
        restart.join()
        assert info.size == 2
        assert backend.read("survivor", "during") == b"22"
    finally:
        backend.close()
        process.stop()


def test_validate_content_sends_each_blocks_md5_for_the_store_to_check(
    bai: Bai, azurite: Azurite, container: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As az: without --validate-content a big file is not hashed; with it its MD5 is stored
    and the store checks each block against its own MD5, shown here by a digest that does
    not match the bytes, which the store refuses."""
    source = tmp_path / "data"
    big = write(source / "big.bin", os.urandom(17 * MiB + 1))  # three blocks
    report = upload(bai, container, source, "--validate-content")
    assert (report["filesTransferred"], report["filesFailed"]) == (1, 0)
    assert stored_md5s(azurite, container) == {"big.bin": file_md5(big)}

    monkeypatch.setattr("openbai.storage.blob_rest._md5", lambda data: b"\0" * 16)
    other = write(tmp_path / "other" / "big.bin", os.urandom(9 * MiB))
    unchecked = upload(bai, container, other.parent, "--destination-path", "plain")
    assert (unchecked["filesTransferred"], unchecked["filesFailed"]) == (1, 0)
    checked = bai("storage", "blob", "upload-batch", "--account", "acct", "-d", container,
                  "-s", str(other.parent), "--destination-path", "checked",
                  "--validate-content", "-o", "json", expect=1)  # fmt: skip
    assert "checked/big.bin: HTTP 400" in checked.stdout, checked.stdout  # Azure: Md5Mismatch
    stored = stored_md5s(azurite, container)
    assert sorted(stored) == ["big.bin", "plain/big.bin"]
    assert stored["plain/big.bin"].startswith("mtime:")  # without the flag: not hashed


def test_a_big_blob_downloads_whole_in_ranges_all_of_one_version(
    azurite: Azurite, tmp_path: Path
) -> None:
    """A big blob comes in parallel 8 MiB ranges, each written at its place; every range
    after the first asks for the version the first came from, so a blob replaced meanwhile
    fails the file (a re-run fetches it again) instead of mixing two versions."""
    backend = AzureBlobStorage("devstoreaccount1", connection_string=azurite.connection_string)
    volume = f"big-{uuid.uuid4().hex[:12]}"
    backend.create_volume(volume)
    try:
        data = os.urandom(3 * 8 * MiB + 7)
        backend.upload(volume, "model.bin", write(tmp_path / "model.bin", data))
        backend.download(volume, "model.bin", tmp_path / "back.bin")
        assert (tmp_path / "back.bin").read_bytes() == data

        rest = backend._rest()
        _, size, etag = rest.get_range(volume, "model.bin", length=MiB)
        assert size == len(data) and etag
        backend.upload(volume, "model.bin", write(tmp_path / "v2.bin", os.urandom(len(data))))
        with pytest.raises(StorageError, match="HTTP 412"):
            rest.get_range(volume, "model.bin", offset=8 * MiB, length=MiB, etag=etag)
    finally:
        backend.delete_volume(volume)
        backend.close()


def test_an_azure_transfer_loads_neither_the_orm_nor_the_sdk(
    bai: Bai, azurite: Azurite, container: str, tmp_path: Path
) -> None:
    """The account's row is read with sqlite3 and its key unsealed without the services; the
    container is checked, listed, written and read back through blob_rest.py alone (the SDK's
    import was a fifth of a second of the command's start)."""
    from cli.test_quick_reads import imported

    write(tmp_path / "data" / "a.txt", "a")
    write(tmp_path / "data" / "sub" / "b.txt", "b")
    loaded = imported(bai, "storage", "blob", "upload-batch", "--account", "acct",
                      "-d", container, "-s", str(tmp_path / "data"))  # fmt: skip
    assert "sqlalchemy" not in loaded and "azure" not in loaded
    assert stored_md5s(azurite, container) == {
        "a.txt": file_md5(tmp_path / "data" / "a.txt"),
        "sub/b.txt": file_md5(tmp_path / "data" / "sub" / "b.txt"),
    }
    loaded = imported(bai, "storage", "blob", "download-batch", "--account", "acct",
                      "-s", container, "-d", str(tmp_path / "back"))  # fmt: skip
    assert "sqlalchemy" not in loaded and "azure" not in loaded
    assert (tmp_path / "back" / "sub" / "b.txt").read_text() == "b"

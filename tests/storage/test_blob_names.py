"""Blob names that are not file-system paths: ``x//y.txt`` is its own blob (Azure keeps the
empty segment), not ``x/y.txt``. It is listed, downloaded and streamed as what it is, on an
Azure account (Azurite), while ``..`` and absolute paths are still refused."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient
from azurite_fixture import Azurite
from conftest import Bai

from openbai.errors import NotFoundError, SpecError
from openbai.storage.azure_blob import AzureBlobStorage
from openbai.storage.base import VolumeKind

pytestmark = pytest.mark.azurite


@pytest.fixture
def container(azurite: Azurite) -> Iterator[ContainerClient]:
    """A fresh container holding ``x//y.txt`` and ``x/z.txt`` (put by Azure's own SDK)."""
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    client = service.create_container(f"names-{uuid.uuid4().hex[:10]}")
    client.upload_blob("x//y.txt", b"double slash\n")
    client.upload_blob("x/z.txt", b"single slash\n")
    yield client
    client.delete_container()


@pytest.fixture
def backend(azurite: Azurite) -> Iterator[AzureBlobStorage]:
    built = AzureBlobStorage.from_options(
        "devstoreaccount1", VolumeKind.BLOB, {"connection_string": azurite.connection_string}
    )
    yield built
    built.close()


def test_the_backend_reads_and_lists_a_name_with_an_empty_segment(
    backend: AzureBlobStorage, container: ContainerClient, tmp_path: Path
) -> None:
    volume = container.container_name
    assert backend.read(volume, "x//y.txt") == b"double slash\n"
    assert backend.stat(volume, "x//y.txt").size == len(b"double slash\n")
    with pytest.raises(NotFoundError):
        backend.read(volume, "x/y.txt")  # another blob, which does not exist
    backend.download(volume, "x//y.txt", tmp_path / "got")
    assert (tmp_path / "got").read_bytes() == b"double slash\n"

    root = [(e.path, e.is_dir) for e in backend.list_dir(volume)]
    assert root == [("x", True)]
    # the folder with an empty name is walked in place, not shown as a folder x inside x
    inside = sorted((e.path, e.is_dir) for e in backend.list_dir(volume, "x"))
    assert inside == [("x//y.txt", False), ("x/z.txt", False)]
    every = sorted(e.path for e in backend.list_dir(volume, "", recursive=True))
    assert every == ["x//y.txt", "x/z.txt"]


def test_a_written_name_keeps_its_empty_segment(
    backend: AzureBlobStorage, container: ContainerClient, tmp_path: Path
) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"new")
    backend.upload(container.container_name, "a//b.txt", source)
    assert sorted(container.list_blob_names()) == ["a//b.txt", "x//y.txt", "x/z.txt"]


@pytest.mark.parametrize("bad", ["x//../y.txt", "../x//y.txt", "/x//y.txt", "x//y\\z"])
def test_empty_segments_do_not_open_a_way_out(
    backend: AzureBlobStorage, container: ContainerClient, bad: str
) -> None:
    with pytest.raises(SpecError):
        backend.read(container.container_name, bad)


@pytest.fixture
def acct(bai: Bai, azurite: Azurite) -> Bai:
    bai("storage", "account", "create", "-n", "acct", "--kind", "azure",
        "--connection-string", azurite.connection_string)  # fmt: skip
    return bai


def test_bai_storage_blob_download_list_and_download_batch(
    acct: Bai, container: ContainerClient, tmp_path: Path
) -> None:
    bai, name = acct, container.container_name
    got = tmp_path / "y.txt"
    bai("storage", "blob", "download", "--account", "acct", "-c", name, "-n", "x//y.txt",
        "-f", str(got))  # fmt: skip
    assert got.read_bytes() == b"double slash\n"
    missing = bai("storage", "blob", "download", "--account", "acct", "-c", name,
                  "-n", "x/y.txt", "-f", str(tmp_path / "no"), expect=3)  # fmt: skip
    assert "x/y.txt" in missing.stderr and not (tmp_path / "no").exists()
    escape = bai("storage", "blob", "download", "--account", "acct", "-c", name,
                 "-n", "x//../../etc/passwd", "-f", str(tmp_path / "no"), expect=2)  # fmt: skip
    assert "--name" in escape.stderr

    listed = bai.json("storage", "blob", "list", "--account", "acct", "-c", name, "-p", "x")
    assert sorted((e["name"], e["type"]) for e in listed) == [
        ("x//y.txt", "file"),
        ("x/z.txt", "file"),
    ]
    tree = tmp_path / "tree"
    report = bai.json("storage", "blob", "download-batch", "--account", "acct", "-s", name,
                      "-d", str(tree), "--no-progress")  # fmt: skip
    assert (report["filesTransferred"], report["filesFailed"]) == (2, 0), report
    # on a local disk "x//y.txt" is x/y.txt, as az's download-batch writes it
    assert (tree / "x" / "y.txt").read_bytes() == b"double slash\n"
    assert (tree / "x" / "z.txt").read_bytes() == b"single slash\n"
    one = bai.json("storage", "blob", "download-batch", "--account", "acct", "-s", name,
                   "--source-path", "x//y.txt", "-d", str(tmp_path / "one"), "--no-progress")  # fmt: skip
    assert one["filesTransferred"] == 1, one
    assert (tmp_path / "one" / "y.txt").read_bytes() == b"double slash\n"


JOB = ["-w", "ws", "-e", "exp", "-j", "j1"]


def test_job_file_list_and_stream_of_an_output_with_an_empty_segment(
    workspace: Bai, azurite: Azurite, container: ContainerClient, tmp_path: Path
) -> None:
    bai, name = workspace, container.container_name
    bai("storage", "account", "create", "-n", "acct", "--kind", "azure",
        "--connection-string", azurite.connection_string)  # fmt: skip
    job = tmp_path / "job.json"
    job.write_text(
        '{"properties": {"nodeCount": 1, "customToolkitSettings": {"commandLine": "echo hi"},'
        ' "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/data", "mountVolumes":'
        ' {"azureBlobFileSystems": [{"accountName": "acct", "containerName": "' + name + '",'
        ' "relativeMountPath": "data"}]}}}'
    )
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "j1", "-f", str(job))
    assert bai.wait("j1")["executionState"] == "succeeded"
    folder = next(n for n in container.list_blob_names() if n.endswith("/stdout.txt"))[:-11]
    container.upload_blob(f"{folder}/x//y.txt", b"in the job's folder\n")
    container.upload_blob(f"{folder}/x/z.txt", b"beside it\n")

    listed = bai.json("job", "file", "list", *JOB, "--path", "x")
    assert sorted(f["name"] for f in listed) == ["/y.txt", "z.txt"]
    streamed = bai("job", "file", "stream", *JOB, "-f", "x//y.txt").stdout
    assert streamed == "in the job's folder\n"
    assert bai("job", "file", "stream", *JOB, "--path", "x", "-f", "z.txt").stdout == "beside it\n"
    escape = bai("job", "file", "stream", *JOB, "-f", "x//../../y.txt", expect=2)
    assert "'..'" in escape.stderr

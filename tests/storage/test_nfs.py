"""NfsStorage against a real nfs-ganesha (NFSv3 and v4 through libnfs): the conformance
suites, adapted where an NFS server differs (one export, made by the server), plus what jobs
need of it: another client sees appends while the file is open, and the files land in the
directory the server exports."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from nfs_fixture import Nfs, nfs_server

from openbai.errors import (
    BackendUnavailableError,
    ConflictError,
    NotFoundError,
    SpecError,
    StorageError,
)
from openbai.storage.base import StorageBackend, VolumeKind
from openbai.storage.nfs import NfsStorage
from openbai.storage.nfs_server import free_port
from openbai.storage.registry import backend_class

from .conformance import StorageConformance, new_volume_name, write
from .writer_conformance import WriterConformance

__all__ = ["nfs_server"]


@pytest.fixture(scope="module", params=[3, 4], ids=["v3", "v4-asked"])
def shared_backend(request: pytest.FixtureRequest, nfs_server: Nfs) -> Iterator[NfsStorage]:
    built = backend_class("nfs").from_options(
        "fs", VolumeKind.FILE, nfs_server.options(request.param)
    )
    assert isinstance(built, NfsStorage)
    yield built
    built.close()


@pytest.fixture
def backend(shared_backend: NfsStorage) -> NfsStorage:
    return shared_backend


def _empty(backend: NfsStorage) -> None:
    for entry in list(backend.list_dir(backend.export)):
        backend.delete(backend.export, entry.path)


class TestNfsStorage(StorageConformance, WriterConformance):
    @pytest.fixture
    def volume(self, backend: StorageBackend) -> Iterator[str]:
        """The export, emptied: an NFS server has one volume, made by the server."""
        assert isinstance(backend, NfsStorage)
        _empty(backend)
        yield backend.export
        _empty(backend)

    def test_volume_lifecycle(self, backend: StorageBackend) -> None:
        assert isinstance(backend, NfsStorage)
        assert [v.name for v in backend.list_volumes()] == ["/mnt/data"]
        assert backend.volume_exists("/mnt/data")
        assert not backend.volume_exists(new_volume_name())
        with pytest.raises(ConflictError):
            backend.create_volume("/mnt/data")
        with pytest.raises(StorageError):
            backend.create_volume(new_volume_name())
        with pytest.raises(StorageError):
            backend.delete_volume("/mnt/data")

    @pytest.mark.parametrize("bad", ["ab"])
    def test_invalid_volume_names_are_refused(self, backend: StorageBackend, bad: str) -> None:
        """Exports are named by the server: any other name is a missing volume."""
        with pytest.raises(NotFoundError):
            backend.stat(bad, "")


def test_files_land_in_the_exported_directory(
    nfs_server: Nfs, backend: NfsStorage, tmp_path: Path
) -> None:
    _empty(backend)
    backend.upload(backend.export, "run/model.bin", write(tmp_path / "m", b"weights"))
    assert (nfs_server.data / "run" / "model.bin").read_bytes() == b"weights"
    (nfs_server.data / "run" / "server.txt").write_text("from the server side")
    assert backend.read(backend.export, "run/server.txt") == b"from the server side"
    assert not [p for p in (nfs_server.data / "run").iterdir() if p.name.startswith(".")]


def test_appends_are_visible_to_another_client_before_close(
    nfs_server: Nfs, backend: NfsStorage
) -> None:
    _empty(backend)
    reader = NfsStorage.from_options("fs", VolumeKind.FILE, nfs_server.options(4))
    writer = backend.open_writer(backend.export, "out/stdout.txt")
    try:
        writer.write(0, b"epoch 1\n")
        assert reader.read(reader.export, "out/stdout.txt") == b"epoch 1\n"
        writer.write(8, b"epoch 2\n")
        assert reader.stat(reader.export, "out/stdout.txt").size == 16
        assert reader.read(reader.export, "out/stdout.txt", 8) == b"epoch 2\n"
    finally:
        writer.close()
        reader.close()


def test_a_reader_keeps_its_file_while_it_is_replaced(backend: NfsStorage, tmp_path: Path) -> None:
    _empty(backend)
    backend.upload(backend.export, "a.txt", write(tmp_path / "1", b"old contents"))
    with backend.open_file(backend.export, "a.txt") as reader:
        assert reader.info.size == 12
        assert reader.read(0, 3) == b"old"
        assert b"".join(reader.stream(3, 12, 4)) == b" contents"


def test_a_server_that_does_not_answer_is_unavailable() -> None:
    options = {
        "host": "127.0.0.1",
        "export": "/mnt/data",
        "port": free_port(),
        "mount_port": free_port(),
        "timeout": 5,
    }
    backend = NfsStorage.from_options("fs", VolumeKind.FILE, options)
    with pytest.raises(BackendUnavailableError):
        backend.stat("/mnt/data", "")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"export": "/mnt/data"}, "host"),
        ({"host": "h", "export": "data"}, "export"),
        ({"host": "h", "export": "/d", "version": 2}, "version"),
    ],
)
def test_bad_options_name_the_field(options: dict[str, object], field: str) -> None:
    with pytest.raises(SpecError) as info:
        NfsStorage.from_options("fs", VolumeKind.FILE, dict(options))
    assert info.value.target == field


def test_paths_stay_inside_the_export(backend: NfsStorage) -> None:
    for bad in ("../etc/passwd", "/etc/passwd", "a/../../b"):
        with pytest.raises(SpecError):
            backend.stat(backend.export, bad)
    assert os.path.isdir("/etc")

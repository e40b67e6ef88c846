"""NfsStorage against a real nfs-ganesha (NFSv3 and v4 through libnfs): the conformance
suites, adapted where an NFS server differs (one export, made by the server), plus what jobs
need of it: another client sees appends while the file is open, and the files land in the
directory the server exports."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from nfs_fixture import Nfs, nfs_server
from polling import wait_until

from openbai.errors import (
    BackendUnavailableError,
    ConflictError,
    NotFoundError,
    SpecError,
    StorageError,
)
from openbai.storage.base import FileWriter, StorageBackend, VolumeKind
from openbai.storage.nfs import NfsStorage
from openbai.storage.nfs_server import EXPORT_PATH, NfsServer, free_port
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


def test_a_mounts_writer_gathers_writes_behind_and_keeps_their_order(
    nfs_server: Nfs, backend: NfsStorage
) -> None:
    """Runs of 1 MiB writes are written behind in large calls; a write that goes back
    (overwrites a run still in flight) or jumps ahead still lands in the order written."""
    _empty(backend)
    mib = 1024 * 1024
    expected = bytearray()
    writer = backend.open_writer(backend.export, "out/big.bin", truncate=True)
    try:
        for i in range(20):  # 20 MiB: two full runs written behind, the rest at flush
            block = bytes([i]) * mib
            writer.write(i * mib, block)
            expected[i * mib :] = block
        writer.write(3 * mib + 5, b"rewritten")  # inside a run that may still be in flight
        expected[3 * mib + 5 : 3 * mib + 14] = b"rewritten"
        writer.write(22 * mib, b"after a hole")
        expected += bytes(2 * mib) + b"after a hole"
        assert writer.read(3 * mib, 16) == bytes(expected[3 * mib : 3 * mib + 16])
        writer.flush()
        assert (nfs_server.data / "out" / "big.bin").read_bytes() == bytes(expected)
        writer.write(len(expected), b"!")
    finally:
        writer.close()
    assert (nfs_server.data / "out" / "big.bin").read_bytes() == bytes(expected) + b"!"


class SlowNetwork(ThreadPoolExecutor):
    """The writer's background calls, held until ``go`` is set (a network slower than the
    job's writes)."""

    def __init__(self) -> None:
        super().__init__(1)
        self.go = threading.Event()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        def held() -> Any:
            self.go.wait(30)
            return fn(*args, **kwargs)

        return super().submit(held)


def test_the_next_run_fills_while_one_is_written_behind(
    nfs_server: Nfs, shared_backend: NfsStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy through a mount waits for the network once per run at most: writes after a
    full run go on while it is sent, and everything lands in order once it is."""
    _empty(shared_backend)
    network = SlowNetwork()
    monkeypatch.setattr(shared_backend, "_behind", network)
    mib = 1024 * 1024
    data = os.urandom(12 * mib)
    writer = shared_backend.open_writer(shared_backend.export, "copy.bin", truncate=True)
    try:
        for offset in range(0, 8 * mib, mib):  # one full run: sent behind, held
            writer.write(offset, data[offset : offset + mib])
        more = threading.Thread(
            target=lambda: [
                writer.write(o, data[o : o + mib]) for o in range(8 * mib, 12 * mib, mib)
            ]
        )
        more.start()
        more.join(10)
        finished_while_held = not more.is_alive()
        network.go.set()
        more.join()
        assert finished_while_held, "the writes after a full run waited for it to be sent"
        writer.flush()
        assert (nfs_server.data / "copy.bin").read_bytes() == data
    finally:
        network.go.set()
        writer.close()
        network.shutdown()


def test_writes_behind_to_a_server_gone_fail_loudly_and_are_sent_once_it_is_back(
    tmp_path: Path, nfs_server: Nfs
) -> None:
    """Nothing written behind is dropped: the flush after the server went away raises, and
    the bytes are sent by the flush after it came back (the server's ports are kept)."""
    server = NfsServer(tmp_path / "server")
    state = server.start()
    options = {"host": state.host, "export": EXPORT_PATH, "port": state.port}
    backend = NfsStorage.from_options("fs", VolumeKind.FILE, {**options, "timeout": 2})
    data = os.urandom(8 * 1024 * 1024 + 3)  # one full run, sent behind, then 3 bytes more
    try:
        writer = backend.open_writer(EXPORT_PATH, "kept.bin", truncate=True)
        server.stop()
        writer.write(0, data[:-3])  # accepted, written behind: fails there
        with pytest.raises(BackendUnavailableError) as info:
            writer.flush()
        assert "kept.bin" in info.value.message
        server.start()
        wait_until(lambda: _flushed(writer), "a flush once the server is back", timeout=60)
        writer.write(len(data) - 3, data[-3:])
        writer.close()
        assert (server.data / "kept.bin").read_bytes() == data
    finally:
        backend.close()
        server.remove()


def test_a_ranged_read_lands_in_the_callers_buffer(backend: NfsStorage, tmp_path: Path) -> None:
    _empty(backend)
    backend.upload(backend.export, "r.bin", write(tmp_path / "r", b"0123456789"))
    buffer = bytearray(8)
    assert backend.read_into(backend.export, "r.bin", 2, memoryview(buffer)[:6]) == 6
    assert bytes(buffer) == b"234567\0\0"
    assert backend.read_into(backend.export, "r.bin", 7, memoryview(buffer)) == 3  # the end
    assert bytes(buffer[:3]) == b"789"
    with pytest.raises(NotFoundError):
        backend.read_into(backend.export, "missing.bin", 0, memoryview(buffer))


def _flushed(writer: FileWriter) -> bool:
    try:
        writer.flush()
    except BackendUnavailableError:  # fails at once for a few seconds after a failure
        return False
    return True

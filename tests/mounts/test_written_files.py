"""How a mount stores the files a job writes, on a real NFS server: visible while they are
written, made durable once they are quiet, when asked, and when closed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from nfs_fixture import Nfs, nfs_server

from openbai.mounts.directory_cache import DirectoryCache
from openbai.mounts.written_files import WrittenFiles
from openbai.storage.base import FileWriter, VolumeKind
from openbai.storage.nfs import NfsStorage

__all__ = ["nfs_server"]  # the fixture


class Counted(FileWriter):
    """The backend's own writer, counting how often it was asked to publish and to flush."""

    def __init__(self, inner: FileWriter):
        self.inner = inner
        self.publishes = self.flushes = 0

    def write(self, offset: int, data: bytes | memoryview) -> None:
        self.inner.write(offset, data)

    def truncate(self, size: int) -> None:
        self.inner.truncate(size)

    def publish(self) -> None:
        self.publishes += 1
        self.inner.publish()

    def flush(self) -> None:
        self.flushes += 1
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def counted(
    nfs_server: Nfs,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[WrittenFiles, list[Counted]]]:
    backend = NfsStorage.from_options("fs", VolumeKind.FILE, nfs_server.options())
    opened: list[Counted] = []
    real = backend.open_writer

    def open_writer(volume: str, path: str, *, truncate: bool = False) -> FileWriter:
        opened.append(Counted(real(volume, path, truncate=truncate)))
        return opened[-1]

    monkeypatch.setattr(backend, "open_writer", open_writer)
    names = DirectoryCache(backend, backend.export, lambda key: key, ttl=1.0)
    yield WrittenFiles(backend, backend.export, lambda key: key, names), opened
    backend.close()


def test_a_file_being_written_is_published_each_round_and_flushed_once_quiet(
    nfs_server: Nfs,
    counted: tuple[WrittenFiles, list[Counted]],
) -> None:
    files, opened = counted
    on_server = nfs_server.data / "train.log"
    part = b"x" * 100_000  # gathered by the writer, not sent yet
    file = files.open("train.log", truncate=True)
    files.acquire(file)
    files.write(file, 0, part)
    assert on_server.stat().st_size == 0

    files.commit_all()  # written since the round before: made visible only
    assert on_server.read_bytes() == part
    (writer,) = opened
    assert (writer.publishes, writer.flushes) == (1, 0)

    files.commit_all()  # quiet since: made durable
    assert (writer.publishes, writer.flushes) == (1, 1)

    files.write(file, len(part), part)
    files.commit_all(durable=True)  # asked for (the job's end, a flush request): however busy
    assert (writer.publishes, writer.flushes) == (1, 2)
    assert on_server.read_bytes() == part * 2

    files.write(file, 2 * len(part), b"end\n")
    files.release(file, extra=1)  # closed: flushed
    assert writer.flushes == 3
    assert on_server.read_bytes() == part * 2 + b"end\n"

"""A real NFS server that restarts (a crash) while files are written: the writes it had
acknowledged but not yet committed to its disk may be gone, and are sent again.

The crash is played on a real nfs-ganesha: stopped, the bytes not yet committed taken out of
the file it stores (what a machine crash loses from its page cache), started again on the same
ports. ganesha's write verifier changes with every start (a new second)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nfs_fixture import Nfs, nfs_server
from polling import wait_until

from openbai.errors import BackendUnavailableError
from openbai.storage import nfs_writer
from openbai.storage.base import FileWriter, VolumeKind
from openbai.storage.nfs import NfsStorage
from openbai.storage.nfs_client import NfsFile
from openbai.storage.nfs_server import EXPORT_PATH, NfsServer
from openbai.storage.nfs_writer import NfsFileWriter, WriteVerifier

__all__ = ["nfs_server"]

MiB = 1024 * 1024


@pytest.fixture
def server(tmp_path: Path, nfs_server: Nfs) -> Iterator[NfsServer]:
    """A server of the test's own, to crash (``nfs_server``: skipped without ganesha)."""
    own = NfsServer(tmp_path / "server")
    own.start()
    yield own
    own.remove()


def backend_of(server: NfsServer, timeout: float = 5) -> NfsStorage:
    state = server.state()
    assert state is not None
    options = {
        "host": state.host,
        "export": EXPORT_PATH,
        "port": state.port,
        "mount_port": state.mount_port,  # (another ganesha may be registered at rpcbind)
        "timeout": timeout,
    }
    return NfsStorage.from_options("fs", VolumeKind.FILE, options)


@pytest.fixture
def backend(server: NfsServer) -> Iterator[NfsStorage]:
    storage = backend_of(server)
    yield storage
    storage.close()


def crash(server: NfsServer, losing: Path, keep: int = 0) -> None:
    """Stop the server, losing what ``losing`` got past its first ``keep`` bytes, and start
    it again, in a new second (its verifier is its start time)."""
    server.stop()
    with open(losing, "r+b") as f:
        f.truncate(keep)
    time.sleep(1.1)
    server.start()


def test_a_call_waiting_for_a_server_gone_costs_little_cpu_and_goes_on_once_it_is_back(
    server: NfsServer,
) -> None:
    """libnfs 4.0 tries to connect again at once, without a pause: a call waiting for a server
    that refuses connections kept a core busy. It waits paused now, and once the server is
    back (on the same ports) it goes on and gets its answer."""
    backend = backend_of(server, timeout=30)  # the outage and the restart well within it
    try:
        (server.data / "kept.txt").write_bytes(b"still here")
        assert backend.read(EXPORT_PATH, "kept.txt") == b"still here"  # a session connected
        server.stop()
        results: list[bytes | Exception] = []

        def read() -> None:
            try:
                results.append(backend.read(EXPORT_PATH, "kept.txt"))
            except Exception as e:
                results.append(e)

        reader = threading.Thread(target=read)
        cpu, wall = time.process_time(), time.monotonic()
        reader.start()
        time.sleep(3)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        assert not results  # still waiting for the server
        server.start()
        reader.join(timeout=30)
        assert results == [b"still here"]
        assert cpu < 0.3 * wall, f"{cpu:.2f} s of CPU while the server was gone for {wall:.2f} s"
    finally:
        backend.close()


def _flushed(writer: FileWriter) -> bool:
    try:
        writer.flush()
    except BackendUnavailableError:  # the connection is made again; meanwhile it fails
        return False
    return True


def test_writes_a_restarted_server_had_not_committed_are_sent_again(
    server: NfsServer, backend: NfsStorage
) -> None:
    data = os.urandom(2 * 8 * MiB + 12345)  # two runs written behind, and a tail
    writer = backend.open_writer(EXPORT_PATH, "crash.bin", truncate=True)
    for offset in range(0, len(data), MiB):
        writer.write(offset, data[offset : offset + MiB])
    writer.publish()  # on the server, not on its disk
    assert (server.data / "crash.bin").read_bytes() == data

    crash(server, server.data / "crash.bin")

    wait_until(lambda: _flushed(writer), "a flush once the server is back", timeout=60)
    writer.close()
    assert (server.data / "crash.bin").read_bytes() == data


def test_what_was_committed_before_the_crash_is_not_sent_again(
    server: NfsServer, backend: NfsStorage
) -> None:
    """Only what was written since the last COMMIT is kept: the rest is on the server's disk."""
    first, second = os.urandom(3 * MiB), os.urandom(2 * MiB)
    writer = backend.open_writer(EXPORT_PATH, "log.bin", truncate=True)
    writer.write(0, first)
    writer.flush()  # committed: survives the crash
    writer.write(len(first), second)
    writer.publish()

    crash(server, server.data / "log.bin", keep=len(first))

    sent: list[int] = []
    handle_pwrite = NfsFile.pwrite

    def counted(self: NfsFile, offset: int, data: bytes | bytearray) -> None:
        sent.append(offset)
        handle_pwrite(self, offset, data)

    NfsFile.pwrite = counted  # type: ignore[method-assign]
    try:
        wait_until(lambda: _flushed(writer), "a flush once the server is back", timeout=60)
    finally:
        NfsFile.pwrite = handle_pwrite  # type: ignore[method-assign]
    writer.close()
    assert (server.data / "log.bin").read_bytes() == first + second
    assert sent and min(sent) == len(first)  # the second part only


def test_a_writer_commits_before_keeping_more_than_its_bound(
    server: NfsServer, backend: NfsStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file written without a pause keeps at most the bound (and a run) to send again: past
    it, a COMMIT; a crash after it loses nothing, as the kept rest is sent again."""
    monkeypatch.setattr(nfs_writer, "_KEEP_UNCOMMITTED", 2 * MiB)
    monkeypatch.setattr(nfs_writer, "_RUN", MiB)
    on_disk: list[int] = []  # the file's size at each COMMIT: what a crash keeps
    committed = WriteVerifier.committed

    def counted(self: WriteVerifier, handle: NfsFile, epoch: bytes) -> bool:
        done = committed(self, handle, epoch)
        on_disk.append((server.data / "long.bin").stat().st_size)
        return done

    monkeypatch.setattr(WriteVerifier, "committed", counted)
    data = os.urandom(9 * MiB + 7)
    writer = backend.open_writer(EXPORT_PATH, "long.bin", truncate=True)
    for offset in range(0, len(data), 256 * 1024):
        writer.write(offset, data[offset : offset + 256 * 1024])
    writer.publish()
    assert len(on_disk) >= 3  # every ~2 MiB, not only at the end
    assert len(data) - on_disk[-1] <= 2 * MiB + MiB  # the bound and a run, kept

    crash(server, server.data / "long.bin", keep=on_disk[-1])

    wait_until(lambda: _flushed(writer), "a flush once the server is back", timeout=60)
    writer.close()
    assert (server.data / "long.bin").read_bytes() == data


def test_an_upload_the_server_lost_in_a_crash_is_sent_again(
    server: NfsServer, backend: NfsStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The crash comes after the upload's writes and before its COMMIT."""
    source = tmp_path / "dataset.bin"
    source.write_bytes(os.urandom(5 * MiB + 3))
    crashed: list[str] = []
    committed = WriteVerifier.committed

    def crash_first(self: WriteVerifier, handle: NfsFile, epoch: bytes) -> bool:
        if not crashed:
            partial = next(server.data.glob(".dataset.bin.*"))
            crashed.append(partial.name)
            crash(server, partial, keep=MiB)
            wait_until(lambda: _answers(handle), "the server back", timeout=60)
        return committed(self, handle, epoch)

    monkeypatch.setattr(WriteVerifier, "committed", crash_first)
    backend.upload(EXPORT_PATH, "dataset.bin", source)
    assert crashed
    assert (server.data / "dataset.bin").read_bytes() == source.read_bytes()


def _answers(handle: NfsFile) -> bool:
    try:
        handle.stat()
    except OSError:
        return False
    return True


def test_the_files_of_a_mount_share_one_bound_on_what_they_keep(
    server: NfsServer, backend: NfsStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each file alone is under its own bound; together they are over the mount's: the file
    that goes over commits, and what all keep stays near the shared bound."""
    monkeypatch.setattr(nfs_writer, "_KEEP_ALL", 2 * MiB)
    monkeypatch.setattr(nfs_writer, "_RUN", MiB)
    data = os.urandom(3 * MiB)
    writers = [backend.open_writer(EXPORT_PATH, f"part{i}.bin", truncate=True) for i in range(3)]
    most = 0
    for offset in range(0, len(data), 256 * 1024):
        for writer in writers:
            writer.write(offset, data[offset : offset + 256 * 1024])
            most = max(most, backend.kept.total)
    for writer in writers:
        writer.publish()
        most = max(most, backend.kept.total)
    assert most <= 2 * MiB + 3 * MiB  # the bound, and a run of each file on its way
    for writer in writers:
        writer.close()
    assert backend.kept.total == 0
    for i in range(3):
        assert (server.data / f"part{i}.bin").read_bytes() == data


def test_a_logs_lines_kept_for_a_restart_are_sent_again_in_order(
    server: NfsServer, backend: NfsStorage
) -> None:
    """A job's log: hundreds of small writes, kept joined (not one object a line), and with a
    rewritten line among them; after the crash the file is what was written, line for line."""
    writer = backend.open_writer(EXPORT_PATH, "stdout.txt", truncate=True)
    expected = bytearray()
    for n in range(300):
        line = f"step {n}: loss {1 / (n + 1):.6f}\n".encode()
        writer.write(len(expected), line)
        expected += line
    writer.write(0, b"STEP")  # over the first line's start
    expected[:4] = b"STEP"
    writer.publish()

    crash(server, server.data / "stdout.txt")

    wait_until(lambda: _flushed(writer), "a flush once the server is back", timeout=60)
    writer.close()
    assert (server.data / "stdout.txt").read_bytes() == bytes(expected)


#: what a copy through a mount hands the writer at a time
STEP = 64 * 1024


def write_steps(writer: FileWriter, data: bytes, start: int = 0, end: int | None = None) -> int:
    """Write ``data[start:end]`` in ``STEP``s, as a copy through a mount does; where it ended."""
    end = len(data) if end is None else end
    for offset in range(start, end, STEP):
        writer.write(offset, data[offset : min(offset + STEP, end)])
    return end


def commits_behind_every_mib(monkeypatch: pytest.MonkeyPatch, stored: Path) -> list[int]:
    """COMMITs sent behind every MiB kept; the list of the size of the server's file
    ``stored`` as each is sent: what it covers, and what a crash keeps (the last one may
    still be on its way when the crash comes)."""
    monkeypatch.setattr(nfs_writer, "_COMMIT_BEHIND", MiB)
    monkeypatch.setattr(nfs_writer, "_RUN", 256 * 1024)
    sizes: list[int] = []
    commit_elsewhere = NfsStorage._commit_elsewhere

    def counted(self: NfsStorage, handle: NfsFile) -> bytes:
        sizes.append(stored.stat().st_size)
        return commit_elsewhere(self, handle)

    monkeypatch.setattr(NfsStorage, "_commit_elsewhere", counted)
    return sizes


def test_a_commit_sent_behind_lets_go_of_what_it_covers_and_a_crash_loses_nothing(
    server: NfsServer, backend: NfsStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past a few MiB kept, a COMMIT goes on another connection while the writes go on: what
    it covers is let go once it is back; the rest is still sent again after a crash."""
    on_disk = commits_behind_every_mib(monkeypatch, server.data / "behind.bin")
    data = os.urandom(6 * MiB + 5)
    writer = backend.open_writer(EXPORT_PATH, "behind.bin", truncate=True)
    write_steps(writer, data)
    writer.publish()
    # one at a time, each let go when it is back: not all of the 6 MiB stays kept
    wait_until(lambda: backend.kept.total < len(data), "a COMMIT behind back")
    assert on_disk

    crash(server, server.data / "behind.bin", keep=on_disk[-1])

    wait_until(lambda: _flushed(writer), "a flush once the server is back", timeout=60)
    writer.close()
    assert (server.data / "behind.bin").read_bytes() == data
    assert backend.kept.total == 0


def test_writes_going_on_through_a_crash_with_commits_behind_lose_nothing(
    server: NfsServer, backend: NfsStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """COMMITs sent behind go on through the crash (the first after it shows the restart);
    nothing kept is let go that the server lost, and the file ends as written."""
    sizes = commits_behind_every_mib(monkeypatch, server.data / "through.bin")
    data = os.urandom(8 * MiB)
    half = len(data) // 2
    writer = backend.open_writer(EXPORT_PATH, "through.bin", truncate=True)
    write_steps(writer, data, 0, half)
    writer.publish()
    wait_until(lambda: backend.kept.total < half, "a COMMIT behind back")

    crash(server, server.data / "through.bin", keep=sizes[-1])
    wait_until(lambda: _answers_at(backend), "the server back", timeout=60)
    write_steps(writer, data, half)

    wait_until(lambda: _flushed(writer), "a flush once the server is back", timeout=60)
    writer.close()
    assert (server.data / "through.bin").read_bytes() == data


def _answers_at(backend: NfsStorage) -> bool:
    try:
        backend.stat(EXPORT_PATH, "")
    except BackendUnavailableError:
        return False
    return True


def test_a_commit_behind_that_shows_a_restart_has_the_next_write_send_all_again(
    server: NfsServer, backend: NfsStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first COMMIT sent behind after a crash shows the restart: the next write sends
    everything kept again and commits it, there and then (not at the file's next flush, with
    COMMITs behind meanwhile that would only show the restart again)."""
    path = server.data / "again.bin"
    sent = commits_behind_every_mib(monkeypatch, path)
    back: list[NfsFileWriter] = []  # a COMMIT sent behind came back (and was dealt with)
    commit_batch = NfsFileWriter._commit_batch

    def noted(self: NfsFileWriter, *args: Any) -> None:
        commit_batch(self, *args)
        back.append(self)

    monkeypatch.setattr(NfsFileWriter, "_commit_batch", noted)
    data = os.urandom(6 * MiB)
    writer = backend.open_writer(EXPORT_PATH, "again.bin", truncate=True)
    written = write_steps(writer, data, 0, 2 * MiB)
    wait_until(lambda: back and len(back) == len(sent), "the COMMITs behind back")

    received = path.stat().st_size
    crash(server, path, keep=sent[-1])
    wait_until(lambda: _answers_at(backend), "the server back", timeout=60)
    before = len(sent)
    while len(sent) == before:  # on until a COMMIT goes behind: it shows the restart
        assert written < len(data)
        written = write_steps(writer, data, written, written + STEP)
        time.sleep(0.02)
    wait_until(lambda: len(back) == len(sent), "the COMMIT behind back")
    assert path.read_bytes()[:received] != data[:received]  # lost in the crash

    written = write_steps(writer, data, written, written + STEP)
    assert path.read_bytes()[:received] == data[:received]

    write_steps(writer, data, written)
    writer.flush()
    writer.close()
    assert path.read_bytes() == data

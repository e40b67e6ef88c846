"""SmbStorage against a real Samba: the conformance suite plus SMB-only behaviour."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from samba_fixture import Samba, free_port, read_env, require_samba, samba_sh

from openbai.errors import (
    BackendUnavailableError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    SpecError,
    StorageError,
)
from openbai.storage.base import VolumeKind
from openbai.storage.registry import backend_for
from openbai.storage.smb import SmbStorage, parse_file_endpoint
from openbai.storage.transfer import upload_tree

from .conformance import StorageConformance, new_volume_name, write
from .writer_conformance import WriterConformance

pytestmark = pytest.mark.samba


@pytest.fixture(scope="module")
def shared_backend(samba: Samba) -> Iterator[SmbStorage]:
    built = backend_for("devstoreaccount1", "azure", VolumeKind.FILE, samba.options())
    assert isinstance(built, SmbStorage)
    yield built
    built.close()


@pytest.fixture
def backend(shared_backend: SmbStorage) -> SmbStorage:
    return shared_backend


@pytest.fixture
def share(backend: SmbStorage) -> Iterator[str]:
    name = backend.create_volume(new_volume_name()).name
    yield name
    backend.delete_volume(name)


def reader_of(samba: Samba) -> SmbStorage:
    """A second client with its own SMB connection, as another node would have."""
    return SmbStorage.from_options("devstoreaccount1", VolumeKind.FILE, samba.options())


class TestSmbStorage(StorageConformance, WriterConformance):
    pass


# -- streaming: what `bai job file stream` needs ------------------------------------------
def test_appends_are_visible_to_another_client_before_close(
    samba: Samba, backend: SmbStorage, share: str
) -> None:
    reader = reader_of(samba)
    writer = backend.open_writer(share, "out/stdout.txt")
    try:
        writer.write(0, b"epoch 1\n")
        assert reader.read(share, "out/stdout.txt") == b"epoch 1\n"
        writer.write(8, b"epoch 2\n")
        assert reader.stat(share, "out/stdout.txt").size == 16
        assert reader.read(share, "out/stdout.txt", 8) == b"epoch 2\n"
    finally:
        writer.close()
        reader.close()
    assert backend.read(share, "out/stdout.txt") == b"epoch 1\nepoch 2\n"


def test_follow_sees_a_file_written_in_place(samba: Samba, backend: SmbStorage, share: str) -> None:
    from openbai.storage.follow import follow

    lines = [f"step {i}\n".encode() for i in range(50)]
    done = threading.Event()

    def job() -> None:
        writer = backend.open_writer(share, "stdout.txt")
        offset = 0
        for line in lines:
            writer.write(offset, line)
            offset += len(line)
            time.sleep(0.002)
        done.set()  # still open: the follower must not need the close
        time.sleep(0.2)
        writer.close()

    thread = threading.Thread(target=job)
    thread.start()
    reader = reader_of(samba)
    try:
        got = b"".join(
            follow(reader, share, "stdout.txt", is_finished=done.is_set, poll_interval=0.01)
        )
    finally:
        thread.join()
        reader.close()
    assert got == b"".join(lines)


# -- in-place writing and rename (mounts) -------------------------------------------------
def test_writer_offsets_truncate_and_reopen(backend: SmbStorage, share: str) -> None:
    writer = backend.open_writer(share, "d/f.bin")
    writer.write(0, b"a" * 10)
    writer.write(4, b"BB")
    writer.write(12, b"z")  # past the end: the gap reads as zeros
    writer.flush()
    assert backend.read(share, "d/f.bin") == b"aaaaBBaaaa\x00\x00z"
    writer.truncate(3)
    writer.close()
    assert backend.read(share, "d/f.bin") == b"aaa"

    again = backend.open_writer(share, "d/f.bin")  # keeps the content
    again.write(3, b"b")
    again.close()
    assert backend.read(share, "d/f.bin") == b"aaab"
    backend.open_writer(share, "d/f.bin", truncate=True).close()
    assert backend.stat(share, "d/f.bin").size == 0


def test_large_write_through_the_writer(backend: SmbStorage, share: str) -> None:
    data = os.urandom(5 * 1024 * 1024 + 3)
    writer = backend.open_writer(share, "big")
    writer.write(0, data)
    writer.close()
    assert backend.read(share, "big") == data


def test_many_files_written_at_once_share_the_connection(samba: Samba, share: str) -> None:
    """Files written at the same time through one mount share one SMB connection and its
    credits; a file whose requests find them spent waits for the others' answers instead
    of failing (16 files: most failed, 'Request requires 16 credits but only 4')."""
    backend = reader_of(samba)  # a fresh connection: its window as small as it starts
    data = os.urandom(2 * 1024 * 1024)
    failures: list[str] = []

    def write(name: str) -> None:
        try:
            writer = backend.open_writer(share, name, truncate=True)
            for offset in range(0, len(data), 1024 * 1024):
                writer.write(offset, data[offset : offset + 1024 * 1024])
            writer.close()
        except StorageError as e:
            failures.append(e.message)

    threads = [threading.Thread(target=write, args=(f"out/{i}.bin",)) for i in range(16)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        backend.close()
    assert failures == []
    for i in range(16):
        assert (samba.share_root / share / "out" / f"{i}.bin").read_bytes() == data


def test_rename_replaces_the_target(backend: SmbStorage, share: str, tmp_path: Path) -> None:
    backend.upload(share, "ckpt/final", write(tmp_path / "old", "old"))
    writer = backend.open_writer(share, "ckpt/.tmp")
    writer.write(0, b"new")
    writer.close()
    backend.rename(share, "ckpt/.tmp", "ckpt/final")
    assert backend.read(share, "ckpt/final") == b"new"
    assert [i.path for i in backend.list_dir(share, "ckpt")] == ["ckpt/final"]
    backend.rename(share, "ckpt/final", "elsewhere/moved")
    assert backend.read(share, "elsewhere/moved") == b"new"
    with pytest.raises(NotFoundError):
        backend.rename(share, "ckpt/final", "x")


def test_capabilities() -> None:
    assert SmbStorage.supports_writer and SmbStorage.shows_appends_live


# -- paths, names, errors -----------------------------------------------------------------
@pytest.mark.parametrize("bad", ["a:b", "data/x:stream", "q?", "p|q", "a*"])
def test_names_smb_refuses_are_spec_errors(
    backend: SmbStorage, share: str, tmp_path: Path, bad: str
) -> None:
    with pytest.raises(SpecError):
        backend.upload(share, bad, write(tmp_path / "src", "x"))
    with pytest.raises(SpecError):
        backend.open_writer(share, bad)


def test_symlink_out_of_the_share_is_not_followed(
    samba: Samba, backend: SmbStorage, share: str
) -> None:
    """A link planted on the server pointing outside the share leads nowhere for clients."""
    outside = samba.state / "outside-secret.txt"
    outside.write_text("secret")
    os.symlink(outside, samba.share_root / share / "escape")
    os.symlink(samba.state, samba.share_root / share / "escape-dir")
    try:
        with pytest.raises((PermissionDeniedError, NotFoundError)):
            backend.read(share, "escape")
        with pytest.raises((PermissionDeniedError, NotFoundError)):
            list(backend.list_dir(share, "escape-dir"))
    finally:
        outside.unlink()


def test_wrong_key_is_permission_denied(samba: Samba) -> None:
    backend = SmbStorage.from_options(
        "devstoreaccount1", VolumeKind.FILE, samba.options(account_key="d3Jvbmcga2V5")
    )
    with pytest.raises(PermissionDeniedError):
        backend.stat("anything", "")


def test_unknown_user_is_permission_denied(samba: Samba) -> None:
    backend = SmbStorage.from_options(
        "nobodyhere", VolumeKind.FILE, samba.options(account_name="nobodyhere")
    )
    with pytest.raises(PermissionDeniedError):
        backend.stat("anything", "")


def test_unreachable_server_is_backend_unavailable() -> None:
    backend = SmbStorage.from_options(
        "acct", VolumeKind.FILE, {"account_key": "a2V5", "file_endpoint": "127.0.0.1:9"}
    )
    with pytest.raises(BackendUnavailableError):
        backend.stat("share", "")


def test_missing_share(backend: SmbStorage) -> None:
    with pytest.raises(NotFoundError):
        backend.stat(new_volume_name(), "")
    with pytest.raises(NotFoundError):
        backend.delete_volume(new_volume_name())


def test_reserved_share_names(backend: SmbStorage) -> None:
    with pytest.raises(ConflictError):
        backend.create_volume("global")


def test_listing_leaves_out_unfinished_uploads(
    samba: Samba, backend: SmbStorage, share: str, tmp_path: Path
) -> None:
    backend.upload(share, "d/done.txt", write(tmp_path / "a", "x"))
    (samba.share_root / share / "d" / ".big.bin.0a1b.openbai-part").write_bytes(b"partial")
    assert [i.path for i in backend.list_dir(share, recursive=True)] == ["d/done.txt"]


def test_upload_keeps_mtime_so_reruns_skip(backend: SmbStorage, share: str, tmp_path: Path) -> None:
    src = write(tmp_path / "t" / "f.txt", "hello")
    os.utime(src, ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    info = backend.upload(share, "f.txt", src)
    assert backend.stat(share, "f.txt").modified == info.modified
    assert upload_tree(backend, share, tmp_path / "t").files_skipped == 1


def test_share_created_elsewhere_is_listed_and_deleted_with_its_files(
    backend: SmbStorage, tmp_path: Path
) -> None:
    name = new_volume_name()
    backend.create_volume(name)
    backend.upload(name, "a/b/c.txt", write(tmp_path / "c", "c"))
    assert backend.volume_exists(name)
    backend.delete_volume(name)
    assert not backend.volume_exists(name)
    backend.create_volume(name)  # the name is free again, and the new share is empty
    try:
        assert list(backend.list_dir(name, recursive=True)) == []
    finally:
        backend.delete_volume(name)


def test_no_share_admin_configured(samba: Samba) -> None:
    backend = SmbStorage.from_options(
        "devstoreaccount1", VolumeKind.FILE, samba.options(samba_config=None)
    )
    with pytest.raises(StorageError, match="samba_config"):
        backend.list_volumes()


def test_samba_config_writable_by_others_is_refused(samba: Samba, tmp_path: Path) -> None:
    config = tmp_path / "smb.conf"
    config.write_text(samba.config.read_text())
    config.chmod(0o666)
    backend = SmbStorage.from_options(
        "devstoreaccount1", VolumeKind.FILE, samba.options(samba_config=str(config))
    )
    with pytest.raises(PermissionDeniedError):
        backend.list_volumes()


# -- options (no server needed) -----------------------------------------------------------
@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("127.0.0.1:1445", ("127.0.0.1", 1445, None)),
        ("smb://files.example:4455", ("files.example", 4455, None)),
        ("fileserver", ("fileserver", 445, None)),
        (
            "https://acct.file.core.windows.net/",
            ("acct.file.core.windows.net", 445, "https://acct.file.core.windows.net"),
        ),
    ],
)
def test_parse_file_endpoint(endpoint: str, expected: tuple[str, int, str]) -> None:
    assert parse_file_endpoint(endpoint) == expected


@pytest.mark.parametrize("bad", ["ftp://x", "smb://", "host:notaport"])
def test_bad_file_endpoint(bad: str) -> None:
    with pytest.raises(SpecError):
        parse_file_endpoint(bad)


def test_options_from_a_connection_string() -> None:
    backend = SmbStorage.from_options(
        "local",
        VolumeKind.FILE,
        {
            "connection_string": "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5==;EndpointSuffix=core.windows.net"
        },
    )
    assert (backend.host, backend.port, backend.username) == (
        "acct.file.core.windows.net",
        445,
        "acct",
    )
    from openbai.storage.azure_shares import AzureShares

    assert isinstance(backend.shares, AzureShares)
    assert backend.shares.endpoint == "https://acct.file.core.windows.net"


def test_constructor_does_no_io() -> None:
    backend = SmbStorage.from_options(
        "acct", VolumeKind.FILE, {"account_key": "a2V5", "file_endpoint": "127.0.0.1:9"}
    )
    assert backend.shares is None and backend.port == 9


def test_options_are_checked() -> None:
    with pytest.raises(SpecError):
        SmbStorage.from_options("acct", VolumeKind.FILE, {"file_endpoint": "127.0.0.1:9"})
    with pytest.raises(SpecError):
        SmbStorage.from_options("acct", VolumeKind.BLOB, {"account_key": "a2V5"})


def test_azure_share_admin_unreachable_is_backend_unavailable() -> None:
    backend = SmbStorage.from_options(
        "acct",
        VolumeKind.FILE,
        {"account_key": "a2V5", "file_endpoint": "https://127.0.0.1:9", "retry_total": 0},
    )
    with pytest.raises(BackendUnavailableError):
        backend.list_volumes()


@contextlib.contextmanager
def private_samba() -> Iterator[tuple[Path, str, SmbStorage]]:
    """A Samba of the test's own (its directory, port and a client), for tests that stop it."""
    require_samba()
    state, port = tempfile.mkdtemp(prefix="openbai-samba-"), str(free_port())
    samba_sh("start", state, port)
    try:
        backend = SmbStorage.from_options(
            "devstoreaccount1", VolumeKind.FILE, read_env(Path(state)).options()
        )
        yield Path(state), port, backend
        backend.close()
    finally:
        samba_sh("stop", state)
        shutil.rmtree(state)


def test_reconnects_after_a_server_restart() -> None:
    """Calls fail as unavailable while smbd is down, and work again once it is back."""
    with private_samba() as (state, port, backend):
        backend.create_volume("keep")
        writer = backend.open_writer("keep", "log")
        writer.write(0, b"a")
        samba_sh("stop", str(state))
        with pytest.raises(BackendUnavailableError):
            backend.stat("keep", "log")
        with pytest.raises(BackendUnavailableError):
            writer.write(1, b"b")  # an open file does not survive: the mount must fail loudly
        samba_sh("start", str(state), port)
        assert backend.read("keep", "log") == b"a"


def _smbd_processes(state: Path) -> list[int]:
    """Every process of the smbd started in ``state`` (samba.sh starts it in a session)."""
    main = int((state / "smbd.pid").read_text())
    found = []
    for name in os.listdir("/proc"):
        with contextlib.suppress(ValueError, OSError):
            if os.getsid(int(name)) == main:
                found.append(int(name))
    return found


def test_writes_go_on_while_the_server_has_yet_to_answer() -> None:
    """A copy through a mount waits for the server only when a window of requests is in
    flight, not at every write: with smbd stopped, 2 MiB of 128 KiB writes still return;
    everything lands, in order, once it answers again."""
    with private_samba() as (state, _, backend):
        backend.create_volume("copies")
        writer = backend.open_writer("copies", "copy.bin", truncate=True)
        data, size = os.urandom(2 * 1024 * 1024), 128 * 1024
        stopped = _smbd_processes(state)
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        try:
            copy = threading.Thread(
                target=lambda: [
                    writer.write(o, data[o : o + size]) for o in range(0, len(data), size)
                ]
            )
            copy.start()
            copy.join(10)
            finished_while_stopped = not copy.is_alive()
        finally:
            for pid in stopped:
                os.kill(pid, signal.SIGCONT)
        copy.join()
        assert finished_while_stopped, "a write waited for the server's answer"
        writer.close()
        assert (state / "shares" / "copies" / "copy.bin").read_bytes() == data


def test_writes_in_flight_when_the_server_dies_fail_the_flush_loudly() -> None:
    """The write returned before the server answered; the flush that follows says the file
    was not stored (the mount keeps it listed and the job's end names it)."""
    with private_samba() as (state, _, backend):
        backend.create_volume("lost")
        writer = backend.open_writer("lost", "out/model.bin", truncate=True)
        stopped = _smbd_processes(state)
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        writer.write(0, os.urandom(1024 * 1024))  # sent, not answered
        for pid in stopped:
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(BackendUnavailableError) as info:
            writer.flush()
        assert info.value.target == "lost/out/model.bin"

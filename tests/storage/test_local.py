"""LocalStorage: the conformance suite plus what only a local directory tree can show."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from openbai.errors import ConflictError, NotFoundError, PermissionDeniedError, SpecError
from openbai.storage.base import VolumeKind
from openbai.storage.follow import follow
from openbai.storage.local import LocalStorage
from openbai.storage.registry import backend_for
from openbai.storage.transfer import TransferEvent, upload_tree

from .conformance import StorageConformance, make_tree, write


@pytest.fixture
def backend(tmp_path: Path) -> LocalStorage:
    built = backend_for("acct", "local", VolumeKind.BLOB, {"root": str(tmp_path / "root")})
    assert isinstance(built, LocalStorage)
    return built


class TestLocalStorage(StorageConformance):
    def test_failed_file_does_not_stop_the_others(  # type: ignore[override]
        self, backend: LocalStorage, volume: str, tmp_path: Path
    ) -> None:
        """A real failure: a folder of the volume stands where one file goes."""
        files = make_tree(tmp_path / "src")
        backend.make_dir(volume, "data/a.csv")
        events: list[TransferEvent] = []
        report = upload_tree(backend, volume, tmp_path / "src", on_progress=events.append)
        assert (report.files_done, report.files_failed) == (len(files) - 1, 1)
        assert [(f.path, type(f.error)) for f in report.failures] == [("data/a.csv", ConflictError)]
        assert [e.path for e in events if e.kind == "file_failed"] == ["data/a.csv"]
        assert backend.read(volume, "data/b.csv") == files["data/b.csv"]
        assert backend.stat(volume, "data/a.csv").is_dir


def test_tree_upload_never_writes_through_a_symlink(backend: LocalStorage, tmp_path: Path) -> None:
    """A folder of the volume swapped for a link out of it: those files fail, none lands
    outside, and the others arrive whole with their mtime and mode."""
    backend.create_volume("data")
    outside = tmp_path / "outside"
    outside.mkdir()
    volume_dir = tmp_path / "root" / "acct" / "blob" / "data"
    (volume_dir / "logs").symlink_to(outside)
    src = tmp_path / "src"
    write(src / "logs" / "a.txt", "secret")
    kept = write(src / "run.sh", "echo\n")
    os.chmod(kept, 0o750)
    os.utime(kept, ns=(1_000_000_000, 1_234_567_891_000))
    report = upload_tree(backend, "data", src)
    assert [(f.path, type(f.error)) for f in report.failures] == [
        ("logs/a.txt", PermissionDeniedError)
    ]
    assert list(outside.iterdir()) == []
    st = (volume_dir / "run.sh").stat()
    assert (st.st_mode & 0o777, st.st_mtime_ns) == (0o750, 1_234_567_891_000)
    assert sorted(p.name for p in volume_dir.iterdir()) == ["logs", "run.sh"]  # no partials


def test_layout_and_local_path(backend: LocalStorage, tmp_path: Path) -> None:
    backend.create_volume("data")
    backend.upload("data", "a/b.txt", write(tmp_path / "src", "x"))
    volume_dir = tmp_path / "root" / "acct" / "blob" / "data"
    assert backend.local_path("data") == volume_dir.resolve()
    assert (volume_dir / "a" / "b.txt").read_text() == "x"


def test_file_volumes_are_separate(tmp_path: Path) -> None:
    options = {"root": str(tmp_path)}
    blobs = LocalStorage.from_options("acct", VolumeKind.BLOB, options)
    shares = LocalStorage.from_options("acct", VolumeKind.FILE, options)
    shares.create_volume("logs")
    assert [v.name for v in shares.list_volumes()] == ["logs"]
    assert shares.list_volumes()[0].kind is VolumeKind.FILE
    assert blobs.list_volumes() == []


def test_stray_directories_are_not_volumes(backend: LocalStorage, tmp_path: Path) -> None:
    backend.create_volume("data")
    (tmp_path / "root" / "acct" / "blob" / "Not_A_Volume").mkdir()
    assert [v.name for v in backend.list_volumes()] == ["data"]


def test_root_option_is_required() -> None:
    with pytest.raises(SpecError) as info:
        LocalStorage.from_options("acct", VolumeKind.BLOB, {})
    assert info.value.target == "root"


def test_make_dir_creates_an_empty_directory(backend: LocalStorage) -> None:
    backend.create_volume("data")
    backend.make_dir("data", "a/b")
    assert [(i.path, i.is_dir) for i in backend.list_dir("data", "a")] == [("a/b", True)]


def test_stat_has_no_md5_and_utc_mtime(backend: LocalStorage, tmp_path: Path) -> None:
    backend.create_volume("data")
    source = write(tmp_path / "src", "x")
    os.utime(source, ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))
    info = backend.upload("data", "f", source)
    assert info.md5 is None
    assert info.modified is not None and info.modified.timestamp() == 1_700_000_000.123456


def test_no_symlink_is_followed_by_a_read(backend: LocalStorage, tmp_path: Path) -> None:
    """Out of the volume or inside it: a read never goes through a link (one inside could
    be swapped for one outside between a check and an open)."""
    backend.create_volume("data")
    secret = write(tmp_path / "secret.txt", "top secret")
    volume_dir = backend.local_path("data")
    assert volume_dir is not None
    (volume_dir / "link").symlink_to(secret)
    (volume_dir / "dirlink").symlink_to(tmp_path)
    write(volume_dir / "ok.txt", "fine")
    (volume_dir / "inner").symlink_to(volume_dir / "ok.txt")

    for path in ("link", "dirlink/secret.txt", "inner"):
        with pytest.raises(PermissionDeniedError):
            backend.read("data", path)
        with pytest.raises(PermissionDeniedError):
            backend.stat("data", path)
        with pytest.raises(PermissionDeniedError):
            backend.download("data", path, tmp_path / "stolen")
    with pytest.raises(PermissionDeniedError):
        list(backend.list_dir("data", "dirlink"))
    with pytest.raises(PermissionDeniedError):
        backend.upload("data", "dirlink/planted.txt", secret)
    assert [i.path for i in backend.list_dir("data")] == ["ok.txt"]
    assert [i.path for i in backend.list_dir("data", recursive=True)] == ["ok.txt"]
    assert backend.read("data", "ok.txt") == b"fine"
    backend.delete("data", "link")  # removes the link, not its target
    assert secret.read_text() == "top secret"


def test_partial_uploads_are_invisible(backend: LocalStorage, tmp_path: Path) -> None:
    backend.create_volume("data")
    volume_dir = backend.local_path("data")
    assert volume_dir is not None
    write(volume_dir / ".big.bin.abc123.openbai-part", "half")
    write(volume_dir / "done.txt", "x")
    assert [i.path for i in backend.list_dir("data", recursive=True)] == ["done.txt"]
    assert [i.path for i in backend.list_dir("data")] == ["done.txt"]


def test_failed_upload_leaves_old_file(
    backend: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend.create_volume("data")
    backend.upload("data", "f", write(tmp_path / "v1", "old"))

    def broken_copy(source: int, out: int, size: int) -> None:
        os.write(out, b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("openbai.storage.local.copy_all", broken_copy)
    with pytest.raises(Exception) as info:
        backend.upload("data", "f", write(tmp_path / "v2", "new content"))
    assert "No space left" in str(info.value)
    assert backend.read("data", "f") == b"old"
    volume_dir = backend.local_path("data")
    assert volume_dir is not None and os.listdir(volume_dir) == ["f"]


def test_upload_keeps_mode_bits(backend: LocalStorage, tmp_path: Path) -> None:
    backend.create_volume("data")
    script = write(tmp_path / "run.sh", "#!/bin/sh\n")
    script.chmod(0o755)
    backend.upload("data", "run.sh", script)
    volume_dir = backend.local_path("data")
    assert volume_dir is not None and os.access(volume_dir / "run.sh", os.X_OK)


def test_an_upload_onto_a_folder_is_a_conflict_and_keeps_the_folder(
    backend: LocalStorage, tmp_path: Path
) -> None:
    backend.create_volume("data")
    backend.upload("data", "logs/a.txt", write(tmp_path / "a", "a"))
    with pytest.raises(ConflictError):
        backend.upload("data", "logs", write(tmp_path / "b", "b"))
    assert [i.path for i in backend.list_dir("data", recursive=True)] == ["logs/a.txt"]
    assert backend.stat("data", "logs").is_dir


def test_upload_keeps_the_modification_time(backend: LocalStorage, tmp_path: Path) -> None:
    backend.create_volume("data")
    source = write(tmp_path / "model.bin", "weights")
    os.utime(source, ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    backend.upload("data", "model.bin", source)
    volume_dir = backend.local_path("data")
    assert volume_dir is not None
    assert (volume_dir / "model.bin").stat().st_mtime_ns == 1_600_000_000_123_456_789


def test_rerun_of_a_local_upload_does_not_hash(
    backend: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend.create_volume("data")
    make_tree(tmp_path / "src")
    upload_tree(backend, "data", tmp_path / "src")

    def no_hashing(path: Path) -> None:
        raise AssertionError("a local re-run must compare size and mtime only")

    monkeypatch.setattr("openbai.storage.transfer.file_md5", no_hashing)
    report = upload_tree(backend, "data", tmp_path / "src")
    assert report.files_skipped == report.files_total == 5


def test_follow_delivers_each_line_while_the_file_grows(
    backend: LocalStorage, tmp_path: Path
) -> None:
    """Each line reaches the follower before the writer goes on (how soon: 'python -m bench
    local'), and nothing is lost before the end."""
    backend.create_volume("logs")
    volume_dir = backend.local_path("logs")
    assert volume_dir is not None
    done = threading.Event()
    seen = threading.Semaphore(0)

    missed: list[int] = []

    def writer() -> None:
        try:
            with open(volume_dir / "stdout.txt", "ab", buffering=0) as f:
                for i in range(20):
                    f.write(f"{i}\n".encode())
                    if not seen.acquire(timeout=30):  # a deadline, not a measurement
                        missed.append(i)
                        return
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    buffer = b""
    for chunk in follow(backend, "logs", "stdout.txt", is_finished=done.is_set):
        for _ in range(chunk.count(b"\n")):
            seen.release()
        buffer += chunk
    thread.join()
    assert missed == [], "this line never reached the follower while the file was open"
    assert buffer == b"".join(f"{i}\n".encode() for i in range(20))


def test_follow_restarts_after_truncation(backend: LocalStorage, tmp_path: Path) -> None:
    backend.create_volume("logs")
    volume_dir = backend.local_path("logs")
    assert volume_dir is not None
    log = write(volume_dir / "log", "first run output\n")
    finished = threading.Event()
    chunks = follow(backend, "logs", "log", is_finished=finished.is_set, poll_interval=0.01)
    assert next(chunks) == b"first run output\n"
    log.write_text("again\n")
    finished.set()
    assert b"".join(chunks) == b"again\n"


def test_missing_volume_in_local_path(backend: LocalStorage) -> None:
    with pytest.raises(NotFoundError):
        backend.local_path("nothere")


def test_follow_from_past_the_end_waits_for_the_file_to_reach_it(backend: LocalStorage) -> None:
    """A stream resumed from an offset its client got is never sent from the start again."""
    backend.create_volume("logs")
    volume_dir = backend.local_path("logs")
    assert volume_dir is not None
    log = write(volume_dir / "log", "0123456789")
    assert list(follow(backend, "logs", "log", offset=11, is_finished=lambda: True)) == []
    asked: list[int] = []

    def grows_on_the_second_look() -> bool:
        asked.append(1)
        if len(asked) == 2:  # the first read found the file short of the offset
            with log.open("a") as f:
                f.write("abcdef")
        return len(asked) > 3

    chunks = follow(
        backend, "logs", "log", offset=12, is_finished=grows_on_the_second_look, poll_interval=0
    )
    assert list(chunks) == [b"cdef"]


def test_a_link_in_a_loop_is_one_failed_file_of_an_upload(
    backend: LocalStorage, tmp_path: Path
) -> None:
    backend.create_volume("data")
    source = tmp_path / "src"
    source.mkdir()
    for i in range(5):
        write(source / f"f{i}.txt", str(i))
    (source / "self").symlink_to(source / "self")
    events: list[TransferEvent] = []
    report = upload_tree(backend, "data", source, on_progress=events.append)
    assert (report.files_total, report.files_done, report.files_failed) == (6, 5, 1)
    (failure,) = report.failures
    assert failure.path == "self" and "symbolic links" in failure.error.message
    assert [e.path for e in events if e.kind == "file_failed"] == ["self"]
    assert sorted(i.name for i in backend.list_dir("data", "")) == [f"f{i}.txt" for i in range(5)]


def test_a_destination_with_an_empty_segment_skips_what_is_there(
    backend: LocalStorage, tmp_path: Path
) -> None:
    """On folders ``a//b`` is ``a/b``: a second upload there finds every file in place."""
    backend.create_volume("data")
    source = tmp_path / "src"
    source.mkdir()
    for i in range(3):
        write(source / f"f{i}.txt", str(i))
    first = upload_tree(backend, "data", source, "a//b")
    again = upload_tree(backend, "data", source, "a//b")
    assert (first.files_done, again.files_done, again.files_skipped) == (3, 0, 3)
    assert sorted(i.path for i in backend.list_dir("data", "a/b")) == [
        "a/b/f0.txt",
        "a/b/f1.txt",
        "a/b/f2.txt",
    ]

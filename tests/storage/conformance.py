"""The storage conformance suite: what every StorageBackend must do, written once.

A backend's test module mixes :class:`StorageConformance` into a ``Test...`` class and
provides a ``backend`` fixture that builds the backend (an empty account is not required:
every test works in volumes of its own).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from openbai.errors import ConflictError, NotFoundError, SpecError, StorageError
from openbai.storage.base import FileInfo, StorageBackend
from openbai.storage.follow import follow
from openbai.storage.transfer import TransferEvent, download_tree, upload_tree


def new_volume_name() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


def make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "train.py": b"print('hello')\n",
        "data/a.csv": b"x,y\n1,2\n",
        "data/b.csv": b"x,y\n3,4\n" * 1000,
        "data/deep/c.bin": bytes(range(256)) * 64,
        "empty.txt": b"",
    }
    for rel, data in files.items():
        write(root / rel, data)
    return files


class StorageConformance:
    @pytest.fixture
    def volume(self, backend: StorageBackend) -> Iterator[str]:
        name = new_volume_name()
        backend.create_volume(name)
        yield name
        try:
            backend.delete_volume(name)
        except NotFoundError:
            pass

    @pytest.fixture
    def put(
        self, backend: StorageBackend, volume: str, tmp_path: Path
    ) -> Callable[[str, bytes | str], None]:
        def put(path: str, data: bytes | str) -> None:
            backend.upload(volume, path, write(tmp_path / "put" / uuid.uuid4().hex, data))

        return put

    # -- volumes -------------------------------------------------------------------------
    def test_volume_lifecycle(self, backend: StorageBackend) -> None:
        name = new_volume_name()
        assert backend.create_volume(name).name == name
        assert name in [v.name for v in backend.list_volumes()]
        assert backend.volume_exists(name)
        with pytest.raises(ConflictError):
            backend.create_volume(name)
        backend.delete_volume(name)
        assert not backend.volume_exists(name)
        with pytest.raises(NotFoundError):
            backend.delete_volume(name)

    @pytest.mark.parametrize("bad", ["ab", "Upper", "-lead", "trail-", "dou--ble", "a_b", "x" * 64])
    def test_invalid_volume_names_are_refused(self, backend: StorageBackend, bad: str) -> None:
        with pytest.raises(SpecError) as info:
            backend.create_volume(bad)
        assert info.value.target == "volume"

    def test_missing_volume(self, backend: StorageBackend) -> None:
        name = new_volume_name()
        with pytest.raises(NotFoundError):
            backend.stat(name, "x")
        with pytest.raises(NotFoundError):
            list(backend.list_dir(name))

    # -- files ---------------------------------------------------------------------------
    def test_upload_stat_read_download(
        self, backend: StorageBackend, volume: str, tmp_path: Path
    ) -> None:
        data = b"0123456789" * 1000
        info = backend.upload(volume, "dir/sub/file.bin", write(tmp_path / "src", data))
        assert (info.path, info.is_dir, info.size) == ("dir/sub/file.bin", False, len(data))

        stat = backend.stat(volume, "dir/sub/file.bin")
        assert stat.size == len(data) and not stat.is_dir and stat.name == "file.bin"
        assert stat.modified is not None and stat.modified.tzinfo is not None
        assert backend.stat(volume, "dir").is_dir
        assert backend.stat(volume, "dir/sub/").is_dir  # normalised

        assert backend.read(volume, "dir/sub/file.bin") == data
        assert backend.read(volume, "dir/sub/file.bin", 5, 10) == data[5:15]
        assert backend.read(volume, "dir/sub/file.bin", 9990) == data[9990:]
        assert backend.read(volume, "dir/sub/file.bin", len(data)) == b""
        assert backend.read(volume, "dir/sub/file.bin", 3, 0) == b""

        backend.download(volume, "dir/sub/file.bin", tmp_path / "out" / "copy.bin")
        assert (tmp_path / "out" / "copy.bin").read_bytes() == data

    def test_upload_replaces(
        self, backend: StorageBackend, volume: str, put: Callable[[str, bytes | str], None]
    ) -> None:
        put("f.txt", "first version")
        put("f.txt", "second")
        assert backend.read(volume, "f.txt") == b"second"
        assert backend.stat(volume, "f.txt").size == 6

    def test_empty_file(
        self, backend: StorageBackend, volume: str, put: Callable[[str, bytes | str], None]
    ) -> None:
        put("empty", b"")
        assert backend.stat(volume, "empty").size == 0
        assert backend.read(volume, "empty") == b""

    def test_list_dir(
        self, backend: StorageBackend, volume: str, put: Callable[[str, bytes | str], None]
    ) -> None:
        for path in ["a.txt", "d/b.txt", "d/e/c.txt", "z/y.txt"]:
            put(path, path)
        top = list(backend.list_dir(volume))
        assert sorted((i.path, i.is_dir) for i in top) == [
            ("a.txt", False),
            ("d", True),
            ("z", True),
        ]
        assert sorted(i.path for i in backend.list_dir(volume, "d")) == ["d/b.txt", "d/e"]
        assert sorted(i.path for i in backend.list_dir(volume, "d", recursive=True)) == [
            "d/b.txt",
            "d/e/c.txt",
        ]
        everything = {i.path: i for i in backend.list_dir(volume, recursive=True)}
        assert sorted(everything) == ["a.txt", "d/b.txt", "d/e/c.txt", "z/y.txt"]
        assert everything["d/e/c.txt"].size == len("d/e/c.txt")

    def test_list_dir_of_missing_directory(
        self, backend: StorageBackend, volume: str, put: Callable[[str, bytes | str], None]
    ) -> None:
        put("f.txt", "x")
        assert list(backend.list_dir(volume)) != []
        with pytest.raises(NotFoundError):
            list(backend.list_dir(volume, "nope"))

    def test_empty_volume_lists_nothing(self, backend: StorageBackend, volume: str) -> None:
        assert list(backend.list_dir(volume)) == []
        assert list(backend.list_dir(volume, recursive=True)) == []

    def test_delete_file_and_directory(
        self, backend: StorageBackend, volume: str, put: Callable[[str, bytes | str], None]
    ) -> None:
        for path in ["keep.txt", "d/a.txt", "d/e/b.txt", "dd.txt"]:
            put(path, "x")
        backend.delete(volume, "keep.txt")
        with pytest.raises(NotFoundError):
            backend.stat(volume, "keep.txt")
        backend.delete(volume, "d")
        with pytest.raises(NotFoundError):
            backend.stat(volume, "d")
        assert [i.path for i in backend.list_dir(volume, recursive=True)] == ["dd.txt"]

    def test_not_found(self, backend: StorageBackend, volume: str, tmp_path: Path) -> None:
        with pytest.raises(NotFoundError):
            backend.stat(volume, "missing.txt")
        with pytest.raises(NotFoundError):
            backend.read(volume, "missing.txt")
        with pytest.raises(NotFoundError):
            backend.download(volume, "missing.txt", tmp_path / "x")
        assert not (tmp_path / "x").exists()
        with pytest.raises(NotFoundError):
            backend.delete(volume, "missing.txt")

    def test_upload_of_missing_source(
        self, backend: StorageBackend, volume: str, tmp_path: Path
    ) -> None:
        with pytest.raises(NotFoundError):
            backend.upload(volume, "x", tmp_path / "does-not-exist")

    def test_make_dir_then_upload_into_it(
        self, backend: StorageBackend, volume: str, put: Callable[[str, bytes | str], None]
    ) -> None:
        backend.make_dir(volume, "a/b")
        put("a/b/f.txt", "x")
        assert backend.stat(volume, "a/b").is_dir
        assert [i.path for i in backend.list_dir(volume, "a/b")] == ["a/b/f.txt"]

    @pytest.mark.parametrize("bad", ["../x", "a/../../x", "/etc/passwd", "a\\b"])
    def test_paths_cannot_escape(
        self, backend: StorageBackend, volume: str, tmp_path: Path, bad: str
    ) -> None:
        source = write(tmp_path / "src", "x")
        with pytest.raises(SpecError):
            backend.stat(volume, bad)
        with pytest.raises(SpecError):
            backend.read(volume, bad)
        with pytest.raises(SpecError):
            backend.upload(volume, bad, source)
        with pytest.raises(SpecError):
            backend.delete(volume, bad)
        with pytest.raises(SpecError):
            list(backend.list_dir(volume, bad))

    def test_deleting_the_root_is_refused(
        self, backend: StorageBackend, volume: str, put: Callable[[str, bytes | str], None]
    ) -> None:
        put("f", "x")
        with pytest.raises(SpecError):
            backend.delete(volume, "")
        assert backend.read(volume, "f") == b"x"

    # -- tree transfers ------------------------------------------------------------------
    def test_upload_tree_then_download_tree(
        self, backend: StorageBackend, volume: str, tmp_path: Path
    ) -> None:
        files = make_tree(tmp_path / "src")
        events: list[TransferEvent] = []
        report = upload_tree(backend, volume, tmp_path / "src", "job/in", on_progress=events.append)
        assert (report.files_total, report.files_done, report.files_failed) == (len(files), 5, 0)
        assert report.bytes_total == report.bytes_done == sum(map(len, files.values()))
        assert events[0].kind == "planned" and events[0].files_total == len(files)
        assert sum(e.nbytes for e in events if e.kind == "bytes") == report.bytes_total
        assert sorted(e.path for e in events if e.kind == "file_done") == sorted(files)
        for rel, data in files.items():
            assert backend.read(volume, f"job/in/{rel}") == data

        report = download_tree(backend, volume, "job/in", tmp_path / "dst")
        assert report.files_done == len(files) and report.is_complete
        for rel, data in files.items():
            assert (tmp_path / "dst" / rel).read_bytes() == data

    def test_rerun_skips_unchanged_and_resends_changed(
        self, backend: StorageBackend, volume: str, tmp_path: Path
    ) -> None:
        src = tmp_path / "src"
        files = make_tree(src)
        upload_tree(backend, volume, src)
        download_tree(backend, volume, "", tmp_path / "dst")

        again = upload_tree(backend, volume, src)
        assert (again.files_skipped, again.files_done) == (len(files), 0)
        assert again.bytes_skipped == again.bytes_total and again.bytes_done == 0
        back = download_tree(backend, volume, "", tmp_path / "dst")
        assert (back.files_skipped, back.files_done) == (len(files), 0)

        write(src / "data/a.csv", "x,y\n9,9\n")  # same size, new content
        write(src / "new.txt", "new")
        events: list[TransferEvent] = []
        third = upload_tree(backend, volume, src, on_progress=events.append)
        assert sorted(e.path for e in events if e.kind == "file_done") == ["data/a.csv", "new.txt"]
        assert third.files_skipped == len(files) - 1
        assert backend.read(volume, "data/a.csv") == b"x,y\n9,9\n"

        fourth = download_tree(backend, volume, "", tmp_path / "dst")
        assert fourth.files_done == 2
        assert (tmp_path / "dst/data/a.csv").read_text() == "x,y\n9,9\n"

    def test_skip_unchanged_off_copies_everything(
        self, backend: StorageBackend, volume: str, tmp_path: Path
    ) -> None:
        files = make_tree(tmp_path / "src")
        upload_tree(backend, volume, tmp_path / "src")
        report = upload_tree(backend, volume, tmp_path / "src", skip_unchanged=False)
        assert report.files_done == len(files)

    def test_transfer_pattern(self, backend: StorageBackend, volume: str, tmp_path: Path) -> None:
        make_tree(tmp_path / "src")
        report = upload_tree(backend, volume, tmp_path / "src", pattern="*.csv")
        assert report.files_total == 2
        assert sorted(i.path for i in backend.list_dir(volume, recursive=True)) == [
            "data/a.csv",
            "data/b.csv",
        ]
        report = download_tree(backend, volume, "data", tmp_path / "dst", pattern="b*")
        assert [p.name for p in (tmp_path / "dst").iterdir()] == ["b.csv"]

    def test_single_file_transfer(
        self, backend: StorageBackend, volume: str, tmp_path: Path
    ) -> None:
        upload_tree(backend, volume, write(tmp_path / "one.txt", "1"), "dir")
        assert backend.read(volume, "dir/one.txt") == b"1"
        download_tree(backend, volume, "dir/one.txt", tmp_path / "dst")
        assert (tmp_path / "dst" / "one.txt").read_text() == "1"

    def test_failed_file_does_not_stop_the_others(
        self,
        backend: StorageBackend,
        volume: str,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        src = tmp_path / "src"
        files = make_tree(src)
        blocked = src / "data" / "a.csv"
        original = backend.upload

        def failing_upload(volume_: str, path: str, source: Path) -> FileInfo:
            if source == blocked:
                raise StorageError("injected", target=path)
            return original(volume_, path, source)

        monkeypatch.setattr(backend, "upload", failing_upload)
        events: list[TransferEvent] = []
        report = upload_tree(backend, volume, src, on_progress=events.append)
        monkeypatch.undo()
        assert (report.files_done, report.files_failed) == (len(files) - 1, 1)
        assert [f.path for f in report.failures] == ["data/a.csv"]
        assert not report.is_complete
        assert [e.path for e in events if e.kind == "file_failed"] == ["data/a.csv"]

    def test_transfer_into_missing_volume_fails_once(
        self, backend: StorageBackend, tmp_path: Path
    ) -> None:
        make_tree(tmp_path / "src")
        with pytest.raises(NotFoundError):
            upload_tree(backend, new_volume_name(), tmp_path / "src")

    # -- following -----------------------------------------------------------------------
    def test_follow_a_growing_file_loses_no_tail(
        self, backend: StorageBackend, volume: str, tmp_path: Path
    ) -> None:
        """A writer re-uploads a growing file; the follower sees every byte, in order."""
        lines = [f"line {i}\n".encode() for i in range(40)]
        done = threading.Event()

        def writer() -> None:
            content = b""
            for i, line in enumerate(lines):
                content += line
                backend.upload(volume, "out/stdout.txt", write(tmp_path / f"v{i}", content))
                time.sleep(0.005)
            done.set()

        thread = threading.Thread(target=writer)
        thread.start()
        got = b"".join(
            follow(backend, volume, "out/stdout.txt", is_finished=done.is_set, poll_interval=0.01)
        )
        thread.join()
        assert got == b"".join(lines)

    def test_follow_from_offset_and_missing_file(
        self, backend: StorageBackend, volume: str, put: Callable[[str, bytes | str], None]
    ) -> None:
        put("log", "abcdef")
        assert b"".join(follow(backend, volume, "log", offset=2, is_finished=lambda: True)) == (
            b"cdef"
        )
        assert list(follow(backend, volume, "never", is_finished=lambda: True)) == []

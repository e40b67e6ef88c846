"""LocalStorage against a job racing its reads: folders swapped for symlinks, files replaced
by rename or deleted while they are read. Real threads on a real directory tree."""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from openbai.errors import NotFoundError, PermissionDeniedError
from openbai.storage.base import VolumeKind
from openbai.storage.local import LocalStorage

TRIES = 5000


@pytest.fixture
def backend(tmp_path: Path) -> LocalStorage:
    storage = LocalStorage.from_options("acct", VolumeKind.FILE, {"root": str(tmp_path / "root")})
    storage.create_volume("data")
    return storage


def volume_dir(backend: LocalStorage) -> Path:
    found = backend.local_path("data")
    assert found is not None
    return found


@pytest.fixture
def swapping(backend: LocalStorage, tmp_path: Path) -> Iterator[Path]:
    """``data/race/secret.txt`` says "inside"; a thread keeps swapping the folder ``race``
    for a symlink to a folder outside the volume whose ``secret.txt`` says "SECRET"."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("SECRET")
    (outside / "only-outside.txt").write_text("SECRET")
    race = volume_dir(backend) / "race"
    race.mkdir()
    (race / "secret.txt").write_text("inside")
    parked, link = race.with_name("race.real"), race.with_name("race.link")
    link.symlink_to(outside)
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            os.rename(race, parked)
            os.rename(link, race)  # race -> outside
            os.rename(race, link)
            os.rename(parked, race)

    thread = threading.Thread(target=swap)
    thread.start()
    try:
        yield race
    finally:
        stop.set()
        thread.join()


def attempt(read: object) -> str:
    """What one read got: its result, or the kind of refusal."""
    try:
        return repr(read() if callable(read) else read)
    except PermissionDeniedError:
        return "refused"
    except NotFoundError:
        return "missing"


def test_a_folder_swapped_for_a_symlink_is_never_followed(
    backend: LocalStorage, swapping: Path, tmp_path: Path
) -> None:
    seen: Counter[str] = Counter()
    for i in range(TRIES):
        seen[attempt(lambda: backend.read("data", "race/secret.txt"))] += 1
        if i % 5 == 0:
            seen[attempt(lambda: sorted(e.name for e in backend.list_dir("data", "race")))] += 1
            seen[attempt(lambda: backend.stat("data", "race/only-outside.txt").size)] += 1
            seen[attempt(lambda: [e.path for e in backend.list_dir("data", recursive=True)])] += 1
    escapes = {k: n for k, n in seen.items() if "SECRET" in k or "only-outside" in k}
    assert escapes == {}, seen
    # the race really happened: reads found the folder, and found the link in its place
    assert seen["b'inside'"] > 0 and seen["refused"] > 0, seen


def test_a_download_through_a_swapped_folder_never_escapes(
    backend: LocalStorage, swapping: Path, tmp_path: Path
) -> None:
    target = tmp_path / "copy.txt"
    seen: Counter[str] = Counter()
    for _ in range(TRIES // 5):
        outcome = attempt(lambda: backend.download("data", "race/secret.txt", target))
        seen[target.read_text() if outcome == "None" else outcome] += 1
    assert "SECRET" not in seen and seen["inside"] > 0, seen


def test_a_file_replaced_by_rename_while_read_reads_whole_as_opened(backend: LocalStorage) -> None:
    path = volume_dir(backend) / "model.bin"
    path.write_bytes(b"o" * 3_000_000)
    with backend.open_file("data", "model.bin") as reader:
        first = reader.read(0, 1_000_000)
        replacement = path.with_name("model.bin.new")
        replacement.write_bytes(b"n" * 5_000_000)
        os.replace(replacement, path)
        rest = reader.read(1_000_000, reader.info.size - 1_000_000)
    assert first + rest == b"o" * 3_000_000
    assert backend.read("data", "model.bin") == b"n" * 5_000_000  # a new open sees the new one


def test_a_file_deleted_while_read_still_reads_whole(backend: LocalStorage) -> None:
    path = volume_dir(backend) / "model.bin"
    path.write_bytes(bytes(range(256)) * 8192)
    chunks = backend.open_file("data", "model.bin").stream(0, path.stat().st_size, 65536)
    got = [next(chunks)]
    path.unlink()
    got.extend(chunks)
    assert b"".join(got) == bytes(range(256)) * 8192


def test_fifos_and_sockets_are_neither_listed_nor_opened(backend: LocalStorage) -> None:
    """A job's FIFO would block an open for reading forever (a server thread hung)."""
    import socket

    folder = volume_dir(backend)
    os.mkfifo(folder / "pipe")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(folder / "sock"))
        (folder / "file.txt").write_text("x")
        assert [e.path for e in backend.list_dir("data")] == ["file.txt"]
        for name in ("pipe", "sock"):
            with pytest.raises(NotFoundError):
                backend.read("data", name)
            with pytest.raises(NotFoundError):
                backend.stat("data", name)


def test_writes_never_go_through_a_symlink_of_the_volume(
    backend: LocalStorage, tmp_path: Path
) -> None:
    """Uploads, folders and deletes walk the volume by descriptor from its top: a folder a
    job replaced by a link to elsewhere is refused, whenever the swap happened."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("SECRET")
    (volume_dir(backend) / "d").symlink_to(outside)
    source = tmp_path / "planted.txt"
    source.write_text("planted")
    for write in (
        lambda: backend.upload("data", "d/planted.txt", source),
        lambda: backend.make_dir("data", "d/made"),
        lambda: backend.delete("data", "d/victim.txt"),
    ):
        assert attempt(write) == "refused"
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]
    backend.delete("data", "d")  # the link itself goes, not what it points to
    assert (outside / "victim.txt").read_text() == "SECRET"
    assert not (volume_dir(backend) / "d").exists()

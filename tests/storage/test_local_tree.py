"""Tree transfers to and from an embedded volume (storage/local_tree.py through transfer.py):
what a user relies on besides speed: atomic files, skip-unchanged, mtimes, progress, an
existing target tree, and never a read or write through a symlink of the volume."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from openbai.errors import PermissionDeniedError
from openbai.storage.atomic import is_partial_name
from openbai.storage.base import VolumeKind
from openbai.storage.local import LocalStorage
from openbai.storage.local_tree import TreeReader
from openbai.storage.transfer import TransferEvent, download_tree, upload_tree

from .conformance import make_tree, write


@pytest.fixture
def backend(tmp_path: Path) -> LocalStorage:
    built = LocalStorage.from_options("acct", VolumeKind.BLOB, {"root": str(tmp_path / "root")})
    built.create_volume("data")
    return built


def volume_dir(backend: LocalStorage) -> Path:
    path = backend.local_path("data")
    assert path is not None
    return path


def everything(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_download_into_an_existing_tree_keeps_its_other_files(
    backend: LocalStorage, tmp_path: Path
) -> None:
    files = make_tree(tmp_path / "src")
    upload_tree(backend, "data", tmp_path / "src")
    target = tmp_path / "dst"
    write(target / "mine.txt", "not in the volume")
    write(target / "data" / "a.csv", "an older, longer a.csv\n")
    write(target / "data" / "deep" / "notes.md", "also mine")

    events: list[TransferEvent] = []
    report = download_tree(backend, "data", "", target, on_progress=events.append)
    assert (report.files_done, report.files_skipped, report.files_failed) == (len(files), 0, 0)
    assert everything(target) == {
        **files,
        "mine.txt": b"not in the volume",
        "data/deep/notes.md": b"also mine",
    }
    assert events[0].kind == "planned" and events[0].files_total == len(files)
    assert sum(e.nbytes for e in events if e.kind == "bytes") == report.bytes_total
    assert sorted(e.path for e in events if e.kind == "file_done") == sorted(files)
    assert not [p for p in target.rglob("*") if is_partial_name(p.name)]


def test_downloaded_files_carry_the_volume_mtime_and_a_rerun_skips_them(
    backend: LocalStorage, tmp_path: Path
) -> None:
    files = make_tree(tmp_path / "src")
    upload_tree(backend, "data", tmp_path / "src")
    stored = volume_dir(backend) / "data" / "a.csv"
    os.utime(stored, ns=(1_000_000_000, 1_234_567_891_234))
    target = tmp_path / "dst"
    download_tree(backend, "data", "", target)
    st = (target / "data" / "a.csv").stat()
    assert (st.st_mtime_ns, st.st_mode & 0o777) == (1_234_567_891_234, 0o644)

    events: list[TransferEvent] = []
    again = download_tree(backend, "data", "", target, on_progress=events.append)
    assert (again.files_done, again.files_skipped) == (0, len(files))
    assert sorted(e.path for e in events if e.kind == "file_skipped") == sorted(files)

    (target / "data" / "b.csv").write_text("edited here")  # another size: fetched again
    os.utime(stored, ns=(1_000_000_000, 1_300_000_000_000))  # same size, newer in the volume
    third = download_tree(backend, "data", "", target)
    assert (third.files_done, third.files_skipped) == (2, len(files) - 2)
    assert everything(target) == files


def test_a_failed_copy_leaves_the_old_file_and_no_partial(
    backend: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A download that fails half-way (a full disk, an I/O error) must not replace the file
    that was there, nor leave a half-written temporary behind."""
    write(tmp_path / "src" / "model.bin", b"new weights " * 1000)
    upload_tree(backend, "data", tmp_path / "src")
    target = tmp_path / "dst"
    write(target / "model.bin", "old weights")

    def half_then_fail(src: int, dst: int, size: int) -> None:
        os.write(dst, os.read(src, size // 2))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("openbai.storage.local.copy_all", half_then_fail)
    report = download_tree(backend, "data", "", target)
    monkeypatch.undo()
    assert [(f.path, "No space left on device" in f.error.message) for f in report.failures] == [
        ("model.bin", True)
    ]
    assert sorted(p.name for p in target.iterdir()) == ["model.bin"]
    assert (target / "model.bin").read_text() == "old weights"


def test_a_download_never_reads_through_a_symlink_of_the_volume(
    backend: LocalStorage, tmp_path: Path
) -> None:
    """A job may swap a folder (or a file) of its volume for a link to a secret between the
    listing and the copy: the copy refuses it and nothing of the secret lands."""
    secret = write(tmp_path / "outside" / "a.txt", "secret")
    write(tmp_path / "src" / "logs" / "a.txt", "log")
    write(tmp_path / "src" / "b.txt", "b")
    upload_tree(backend, "data", tmp_path / "src")
    root = volume_dir(backend)
    target = tmp_path / "dst"
    with TreeReader(backend, "data", target) as reader:
        (root / "logs" / "a.txt").unlink()
        (root / "logs").rmdir()
        (root / "logs").symlink_to(secret.parent)
        (root / "b.txt").unlink()
        (root / "b.txt").symlink_to(secret)
        with pytest.raises(PermissionDeniedError):
            reader.copy("logs/a.txt", "logs/a.txt")
        with pytest.raises(PermissionDeniedError):
            reader.copy("b.txt", "b.txt")
    assert everything(target) == {}


def test_a_download_follows_links_of_the_users_own_tree(
    backend: LocalStorage, tmp_path: Path
) -> None:
    """The target is the user's: a folder there that is a link is written through, as
    ``cp -r`` would."""
    write(tmp_path / "src" / "data" / "x.txt", "x")
    upload_tree(backend, "data", tmp_path / "src")
    elsewhere = tmp_path / "big-disk"
    elsewhere.mkdir()
    (tmp_path / "dst").mkdir()
    (tmp_path / "dst" / "data").symlink_to(elsewhere)
    assert download_tree(backend, "data", "", tmp_path / "dst").files_done == 1
    assert (elsewhere / "x.txt").read_text() == "x"


def test_file_shares_of_an_embedded_account_take_the_same_path(tmp_path: Path) -> None:
    shares = LocalStorage.from_options("acct", VolumeKind.FILE, {"root": str(tmp_path / "r")})
    shares.create_volume("logs")
    files = make_tree(tmp_path / "src")
    assert upload_tree(shares, "logs", tmp_path / "src").files_done == len(files)
    assert download_tree(shares, "logs", "data", tmp_path / "dst").files_done == 3
    assert everything(tmp_path / "dst") == {
        rel.removeprefix("data/"): data for rel, data in files.items() if rel.startswith("data/")
    }


def test_names_a_volume_refuses_fail_their_file_alone(
    backend: LocalStorage, tmp_path: Path
) -> None:
    """A tree's file names are checked as a single upload's are: a backslash in one fails that
    file (it could be neither listed nor downloaded), and the others land where asked."""
    source = tmp_path / "src"
    write(source / "ok.txt", b"fine")
    write(source / "a\\b.txt", b"refused")
    report = upload_tree(backend, "data", source, destination_path="x//y")
    assert (report.files_done, report.files_failed) == (1, 1)
    assert "backslash" in report.failures[0].error.message
    assert everything(volume_dir(backend)) == {"x/y/ok.txt": b"fine"}

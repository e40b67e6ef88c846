"""DirectoryCache: cached lookups and listings of a volume's names, one listing at a time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from polling import wait_until

from openbai.mounts.directory_cache import DirectoryCache
from openbai.storage.base import FileInfo, VolumeKind
from openbai.storage.local import LocalStorage


class CountingStorage(LocalStorage):
    """A real local volume that counts its listings and can hold the first one back."""

    def __init__(self, base: Path) -> None:
        super().__init__(base, VolumeKind.BLOB)
        self.listings = 0
        self.release = threading.Event()

    def list_dir(
        self, volume: str, path: str = "", *, recursive: bool = False
    ) -> Iterator[FileInfo]:
        self.listings += 1
        self.release.wait()
        return super().list_dir(volume, path, recursive=recursive)


def test_threads_missing_the_cache_together_share_one_listing(tmp_path: Path) -> None:
    backend = CountingStorage(tmp_path)
    backend.create_volume("data")
    for i in range(50):
        (tmp_path / "data" / f"{i:02d}.bin").write_bytes(b"x" * i)
    names = DirectoryCache(backend, "data", lambda key: key, ttl=60.0)
    found: list[FileInfo | None] = []
    arrived: list[int] = []

    def look(i: int) -> None:
        arrived.append(i)
        found.append(names.lookup(f"{i:02d}.bin"))

    threads = [threading.Thread(target=look, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    # the threads arrive while the first listing is held back
    wait_until(lambda: len(arrived) == 16 and backend.listings == 1, "16 threads at the lookup")
    backend.release.set()
    for thread in threads:
        thread.join()
    assert backend.listings == 1
    assert sorted(info.size for info in found if info is not None) == list(range(16))
    assert names.lookup("missing.bin") is None and backend.listings == 1


def test_an_expired_listing_answers_while_a_fresh_one_is_fetched(tmp_path: Path) -> None:
    backend = CountingStorage(tmp_path)
    backend.release.set()
    backend.create_volume("data")
    (tmp_path / "data" / "old.bin").write_bytes(b"old")
    names = DirectoryCache(backend, "data", lambda key: key, ttl=3.0)
    assert names.lookup("old.bin") is not None and backend.listings == 1
    (tmp_path / "data" / "new.bin").write_bytes(b"new")  # by another client
    backend.release.clear()  # the fresh listing is held back: the old one answers
    # once expired (within the grace period, another 3 s), a lookup answers from the old
    # listing and starts the fresh one in the background
    wait_until(
        lambda: names.lookup("new.bin") is None and backend.listings == 2,
        "background listing after the expiry",
        timeout=10,
    )
    backend.release.set()
    wait_until(lambda: names.lookup("new.bin"), "name from the background listing", timeout=10)
    assert backend.listings == 2


def test_a_change_made_through_the_mount_is_never_hidden_by_an_older_listing(
    tmp_path: Path,
) -> None:
    backend = CountingStorage(tmp_path)
    backend.create_volume("data")
    names = DirectoryCache(backend, "data", lambda key: key, ttl=60.0)
    first = threading.Thread(target=names.listing, args=("",))
    first.start()  # a listing on its way (held back) ...
    wait_until(lambda: backend.listings == 1, "listing on its way")
    (tmp_path / "data" / "made.bin").write_bytes(b"x")  # ... when the mount makes a file
    names.forget("made.bin")
    backend.release.set()
    first.join()
    assert "made.bin" in names.listing("")


def test_files_written_through_the_mount_join_the_cached_listing(tmp_path: Path) -> None:
    backend = CountingStorage(tmp_path)
    backend.release.set()
    backend.create_volume("data")
    names = DirectoryCache(backend, "data", lambda key: key, ttl=60.0)
    assert names.listing("") == {} and backend.listings == 1
    for i in range(100):  # as a job creating many files: each new name is looked up first
        assert names.lookup(f"{i:03d}.bin") is None
        (tmp_path / "data" / f"{i:03d}.bin").write_bytes(b"x" * i)
        names.stored(f"{i:03d}.bin", i, 1_700_000_000 * 10**9)
    assert backend.listings == 1  # no listing again per new file
    assert sorted(names.listing("")) == [f"{i:03d}.bin" for i in range(100)]
    info = names.lookup("042.bin")
    assert info is not None and info.size == 42 and not info.is_dir
    assert info.modified is not None and info.modified.timestamp() == 1_700_000_000
    names.forget("042.bin")  # any other change drops the listing, as before
    assert names.lookup("042.bin") is not None and backend.listings == 2


def test_files_written_while_a_listing_is_on_its_way_join_it_and_it_is_kept(
    tmp_path: Path,
) -> None:
    """Threads creating files while the directory is being listed: the listing gains the
    files when it arrives and is kept (dropping it, every lookup listed the directory again,
    each listing spoiled by the files made while it ran)."""
    backend = CountingStorage(tmp_path)
    backend.create_volume("data")
    (tmp_path / "data" / "old.bin").write_bytes(b"old")
    names = DirectoryCache(backend, "data", lambda key: key, ttl=60.0)
    first = threading.Thread(target=names.listing, args=("",))
    first.start()  # a listing on its way (held back) ...
    wait_until(lambda: backend.listings == 1, "listing on its way")
    for i in range(5):  # ... while the mount writes files
        (tmp_path / "data" / f"{i}.bin").write_bytes(b"x" * i)
        names.stored(f"{i}.bin", i, 1_700_000_000 * 10**9)
    backend.release.set()
    first.join()
    assert sorted(names.listing("")) == ["0.bin", "1.bin", "2.bin", "3.bin", "4.bin", "old.bin"]
    assert names.lookup("new.bin") is None
    assert backend.listings == 1

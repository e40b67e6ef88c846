"""Conformance for backends that write files in place (``supports_writer``): what mounts need.

Mix :class:`WriterConformance` into a backend's test class next to ``StorageConformance``
(it uses the same ``backend`` fixture and the ``volume`` fixture of that suite).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from openbai.errors import NotFoundError
from openbai.storage.base import StorageBackend

from .conformance import write


def _put(backend: StorageBackend, volume: str, path: str, data: bytes, tmp: Path) -> None:
    backend.upload(volume, path, write(tmp / os.urandom(6).hex(), data))


class WriterConformance:
    def test_supports_writer(self, backend: StorageBackend) -> None:
        assert backend.supports_writer

    def test_new_file_is_visible_after_flush_while_open(
        self, backend: StorageBackend, volume: str
    ) -> None:
        writer = backend.open_writer(volume, "out/log.txt", truncate=True)
        writer.write(0, b"first line\n")
        writer.flush()
        assert backend.read(volume, "out/log.txt") == b"first line\n"
        writer.write(11, b"second line\n")
        writer.flush()
        assert backend.stat(volume, "out/log.txt").size == 23
        writer.write(23, b"third\n")
        writer.close()
        assert backend.read(volume, "out/log.txt") == b"first line\nsecond line\nthird\n"
        assert [i.name for i in backend.list_dir(volume, "out")] == ["log.txt"]

    def test_large_sequential_write(self, backend: StorageBackend, volume: str) -> None:
        data = os.urandom(20 * 1024 * 1024 + 12345)
        writer = backend.open_writer(volume, "big.bin", truncate=True)
        for offset in range(0, len(data), 131072):
            writer.write(offset, data[offset : offset + 131072])
        writer.close()
        assert backend.stat(volume, "big.bin").size == len(data)
        assert backend.read(volume, "big.bin") == data

    def test_written_bytes_are_the_writers_once_write_returns(
        self, backend: StorageBackend, volume: str
    ) -> None:
        """A mount passes a view of the kernel's buffer, which is reused as soon as ``write``
        returns: what the writer keeps for later (runs written behind, blocks to stage) must
        be its own copy."""
        first, second = os.urandom(300_000), os.urandom(300_000)
        buffer = bytearray(first)
        writer = backend.open_writer(volume, "reused.bin", truncate=True)
        with memoryview(buffer) as view:
            writer.write(0, view)
        buffer[:] = second  # the kernel's next request lands in the same buffer
        with memoryview(buffer) as view:
            writer.write(len(first), view)
        buffer[:] = bytes(len(buffer))
        writer.close()
        assert backend.read(volume, "reused.bin") == first + second

    def test_append_to_existing_file_keeps_its_bytes(
        self, backend: StorageBackend, volume: str, tmp_path: Path
    ) -> None:
        _put(backend, volume, "a.txt", b"hello ", tmp_path)
        writer = backend.open_writer(volume, "a.txt")
        writer.write(6, b"world")
        writer.close()
        assert backend.read(volume, "a.txt") == b"hello world"
        writer = backend.open_writer(volume, "a.txt")  # again, on blocks written by a writer
        writer.write(11, b"!")
        writer.close()
        assert backend.read(volume, "a.txt") == b"hello world!"

    def test_rewrite_in_the_middle_and_truncate(
        self, backend: StorageBackend, volume: str, tmp_path: Path
    ) -> None:
        _put(backend, volume, "m.bin", b"0123456789" * 10, tmp_path)
        writer = backend.open_writer(volume, "m.bin")
        writer.write(5, b"XYZ")
        writer.truncate(50)
        writer.close()
        assert backend.read(volume, "m.bin") == (b"01234XYZ89" + b"0123456789" * 4)
        writer = backend.open_writer(volume, "m.bin")
        writer.truncate(60)
        writer.write(70, b"end")
        writer.close()
        expected = b"01234XYZ89" + b"0123456789" * 4 + bytes(20) + b"end"
        assert backend.read(volume, "m.bin") == expected

    def test_truncating_open_empties_the_file(
        self, backend: StorageBackend, volume: str, tmp_path: Path
    ) -> None:
        _put(backend, volume, "t.txt", b"old content", tmp_path)
        writer = backend.open_writer(volume, "t.txt", truncate=True)
        writer.write(0, b"new")
        writer.close()
        assert backend.read(volume, "t.txt") == b"new"
        backend.open_writer(volume, "t.txt", truncate=True).close()
        assert backend.stat(volume, "t.txt").size == 0

    def test_reads_back_what_was_written(self, backend: StorageBackend, volume: str) -> None:
        writer = backend.open_writer(volume, "r.bin", truncate=True)
        try:
            if not writer.can_read:
                pytest.skip("this backend's writer does not read back")
            writer.write(0, b"abcdef")
            assert writer.read(2, 3) == b"cde"
            assert writer.read(4, 100) == b"ef"
        finally:
            writer.close()

    def test_rename_replaces_the_target(
        self, backend: StorageBackend, volume: str, tmp_path: Path
    ) -> None:
        _put(backend, volume, "ckpt/model.pt", b"old", tmp_path)
        writer = backend.open_writer(volume, "ckpt/model.pt.tmp", truncate=True)
        writer.write(0, b"new model")
        writer.close()
        backend.rename(volume, "ckpt/model.pt.tmp", "ckpt/model.pt")
        assert backend.read(volume, "ckpt/model.pt") == b"new model"
        with pytest.raises(NotFoundError):
            backend.stat(volume, "ckpt/model.pt.tmp")
        with pytest.raises(NotFoundError):
            backend.rename(volume, "ckpt/missing", "ckpt/other")

"""A blob container mounted with FUSE, used the way a job uses it: plain file operations."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from azurite_fixture import Azurite, AzuriteProcess, require_node
from polling import wait_until

from openbai.errors import MountError, NotFoundError
from openbai.mounts.fuse import FuseMounter, state_root
from openbai.storage.azure_blob import AzureBlobStorage
from openbai.storage.base import VolumeKind

from .conftest import FAST, MountIt, blob_spec, openbai_mounts

pytestmark = [pytest.mark.fuse, pytest.mark.azurite]


def put(blob: AzureBlobStorage, container: str, path: str, data: bytes, tmp: Path) -> None:
    source = tmp / os.urandom(6).hex()
    source.write_bytes(data)
    blob.upload(container, path, source)


def test_reads_and_lists_what_is_in_the_container(
    mount_blob: MountIt, blob: AzureBlobStorage, container: str, tmp_path: Path
) -> None:
    big = os.urandom(20 * 1024 * 1024 + 333)
    put(blob, container, "train/0.csv", b"x,y\n1,2\n", tmp_path)
    put(blob, container, "train/deep/1.csv", b"x,y\n3,4\n", tmp_path)
    put(blob, container, "model.bin", big, tmp_path)
    root = mount_blob().path
    assert sorted(os.listdir(root)) == ["model.bin", "train"]
    assert sorted(os.listdir(root / "train")) == ["0.csv", "deep"]
    assert (root / "train" / "deep" / "1.csv").read_bytes() == b"x,y\n3,4\n"
    assert (root / "train").is_dir() and (root / "model.bin").stat().st_size == len(big)
    assert (root / "model.bin").read_bytes() == big
    with open(root / "model.bin", "rb") as f:  # random access
        f.seek(15 * 1024 * 1024 + 7)
        assert f.read(4096) == big[15 * 1024 * 1024 + 7 :][:4096]
        f.seek(100)
        assert f.read(10) == big[100:110]
    with pytest.raises(FileNotFoundError):
        (root / "missing.txt").read_bytes()


def test_written_files_become_blobs_and_show_while_being_written(
    mount_blob: MountIt, blob: AzureBlobStorage, container: str
) -> None:
    root = mount_blob().path
    (root / "out").mkdir()
    with open(root / "out" / "log.txt", "w") as log:
        log.write("epoch 1\n")
        log.flush()
        wait_until(
            lambda: _content(blob, container, "out/log.txt") == b"epoch 1\n",
            "first line uploaded",
            5.0,
        )
        log.write("epoch 2\n")
        log.flush()
        wait_until(
            lambda: _content(blob, container, "out/log.txt") == b"epoch 1\nepoch 2\n",
            "second line uploaded",
            5.0,
        )
        assert (root / "out" / "log.txt").read_text() == "epoch 1\nepoch 2\n"
    data = os.urandom(17 * 1024 * 1024)
    (root / "out" / "weights.bin").write_bytes(data)
    assert blob.read(container, "out/weights.bin") == data
    with open(root / "out" / "log.txt", "a") as log:
        log.write("done\n")
    assert blob.read(container, "out/log.txt") == b"epoch 1\nepoch 2\ndone\n"
    assert sorted(os.listdir(root / "out")) == ["log.txt", "weights.bin"]


def test_big_write_with_commits_while_it_is_written(
    mount_blob: MountIt, blob: AzureBlobStorage, container: str
) -> None:
    """Periodic commits while parallel blocks are staged: close succeeds (no EIO), every byte
    lands, and the blob carries the MD5 of its bytes (written sequentially; hashed at any
    size when the mount is asked to)."""
    data = os.urandom(96 * 1024 * 1024 + 1234)
    root = mount_blob(FAST._replace(commit_interval=0.05, md5_up_to=2**40)).path
    with open(root / "big.bin", "wb", buffering=0) as f:
        for offset in range(0, len(data), 1024 * 1024):
            f.write(data[offset : offset + 1024 * 1024])
    assert blob.read(container, "big.bin") == data
    assert blob.stat(container, "big.bin").md5 == hashlib.md5(data).hexdigest()


def test_files_up_to_the_md5_size_get_their_md5_bigger_ones_are_not_hashed(
    mount_blob: MountIt, blob: AzureBlobStorage, container: str
) -> None:
    small, big = os.urandom(3 * 1024 * 1024), os.urandom(12 * 1024 * 1024)
    root = mount_blob(FAST).path  # by default, up to 8 MiB
    for name, data in (("small.bin", small), ("big.bin", big)):
        with open(root / name, "wb", buffering=0) as f:
            for offset in range(0, len(data), 1024 * 1024):
                f.write(data[offset : offset + 1024 * 1024])
    assert blob.stat(container, "small.bin").md5 == hashlib.md5(small).hexdigest()
    assert blob.read(container, "big.bin") == big
    assert blob.stat(container, "big.bin").md5 is None


def _content(blob: AzureBlobStorage, container: str, path: str) -> bytes | None:
    try:
        return blob.read(container, path)
    except NotFoundError:
        return None


def test_write_tmp_then_rename_is_atomic_for_readers(
    mount_blob: MountIt, blob: AzureBlobStorage, container: str, tmp_path: Path
) -> None:
    old, new = b"old" * 100_000, b"new" * 200_000
    put(blob, container, "ckpt/model.pt", old, tmp_path)
    root = mount_blob().path
    seen: set[bytes] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.add(blob.read(container, "ckpt/model.pt"))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        (root / "ckpt" / "model.pt.tmp").write_bytes(new)
        os.rename(root / "ckpt" / "model.pt.tmp", root / "ckpt" / "model.pt")
        wait_until(lambda: new in seen, "read of the renamed checkpoint")
    finally:
        stop.set()
        thread.join()
    assert seen <= {old, new}
    assert blob.read(container, "ckpt/model.pt") == new
    assert sorted(os.listdir(root / "ckpt")) == ["model.pt"]
    assert (root / "ckpt" / "model.pt").read_bytes() == new


def test_directories_delete_truncate_and_rename(
    mount_blob: MountIt, blob: AzureBlobStorage, container: str
) -> None:
    root = mount_blob().path
    (root / "empty").mkdir()
    assert "empty" in os.listdir(root)
    (root / "empty").rmdir()
    assert "empty" not in os.listdir(root)
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f.txt").write_text("0123456789")
    with pytest.raises(OSError):
        (root / "a").rmdir()
    os.truncate(root / "a" / "b" / "f.txt", 4)
    assert blob.read(container, "a/b/f.txt") == b"0123"
    os.rename(root / "a", root / "c")
    assert sorted(os.listdir(root)) == ["c"]
    assert (root / "c" / "b" / "f.txt").read_text() == "0123"
    assert [i.path for i in blob.list_dir(container, recursive=True)] == ["c/b/f.txt"]
    (root / "c" / "b" / "f.txt").unlink()
    assert not (root / "c" / "b" / "f.txt").exists()
    with pytest.raises(NotFoundError):
        blob.stat(container, "c/b/f.txt")


def test_unmount_stores_everything_and_leaves_nothing(
    mount_blob: MountIt, blob: AzureBlobStorage, container: str
) -> None:
    mount = mount_blob()
    files = {f"out/{i}.txt": os.urandom(1000 + i) for i in range(40)}
    (mount.path / "out").mkdir()
    for name, data in files.items():
        (mount.path / name).write_bytes(data)
    state = mount.state  # type: ignore[attr-defined]
    mount.unmount()
    assert {i.path: blob.read(container, i.path) for i in blob.list_dir(container, "out")} == files
    assert not mount.path.exists() and not state.exists()
    assert str(mount.path) not in openbai_mounts()


def test_missing_container_is_a_mount_error(fuse: None, azurite: Azurite, tmp_path: Path) -> None:
    spec = blob_spec(azurite, "no-such-container")
    with pytest.raises(MountError, match="no-such-container"):
        FuseMounter(FAST).mount(spec, tmp_path / "data", print)
    assert not (tmp_path / "data").exists() or not os.listdir(tmp_path / "data")


@pytest.fixture
def own_azurite(tmp_path: Path) -> Iterator[tuple[AzuriteProcess, Azurite]]:
    """An Azurite of this test alone (it is stopped and started by the test)."""
    require_node()
    process = AzuriteProcess(tmp_path / "azurite")
    azurite = process.start()
    yield process, azurite
    process.stop()


def test_writes_ride_out_a_storage_outage(
    fuse: None, own_azurite: tuple[AzuriteProcess, Azurite], tmp_path: Path
) -> None:
    process, azurite = own_azurite
    backend = AzureBlobStorage.from_options(
        azurite.account_name, VolumeKind.BLOB, {"connection_string": azurite.connection_string}
    )
    backend.create_volume("out")
    mount = FuseMounter(FAST).mount(blob_spec(azurite, "out"), tmp_path / "m" / "out", print)
    try:
        lines = [f"step {i}\n".encode() for i in range(30)]
        with open(mount.path / "log.txt", "wb") as log:
            for i, line in enumerate(lines):
                if i == 5:
                    process.stop()
                    restart = threading.Timer(10.0, process.start)
                    restart.start()
                log.write(line)
                log.flush()
                time.sleep(0.4)
        restart.join()
        mount.unmount()
        assert backend.read("out", "log.txt") == b"".join(lines)
    finally:
        mount.unmount()
        backend.close()


def test_storage_gone_for_good_fails_the_unmount_loudly(
    fuse: None, own_azurite: tuple[AzuriteProcess, Azurite], tmp_path: Path
) -> None:
    process, azurite = own_azurite
    backend = AzureBlobStorage.from_options(
        azurite.account_name, VolumeKind.BLOB, {"connection_string": azurite.connection_string}
    )
    backend.create_volume("out")
    backend.close()
    settings = FAST._replace(flush_timeout=3.0)
    spec = blob_spec(azurite, "out", retry_total=1)
    mount = FuseMounter(settings).mount(spec, tmp_path / "m" / "out", print)
    result = open(mount.path / "result.txt", "wb")
    result.write(b"the result")
    process.stop()
    with pytest.raises(OSError):
        result.close()  # close reports EIO: the store is unreachable
    with pytest.raises(MountError, match="result.txt"):
        mount.unmount()
    assert not mount.path.exists()
    assert str(mount.path) not in openbai_mounts()


def test_the_mount_goes_away_with_the_process_that_made_it(
    fuse: None, azurite: Azurite, container: str, tmp_path: Path
) -> None:
    target = tmp_path / "m" / "data"
    script = (
        "import os, sys\nfrom pathlib import Path\n"
        "from openbai.mounts.fuse import FuseMounter\n"
        "from openbai.plan.job_plan import MountSpec\n"
        "from openbai.mounts.settings import MountSettings\n"
        f"spec = MountSpec(**{blob_spec(azurite, container)._asdict()!r})\n"
        f"FuseMounter(MountSettings(commit_interval=0.5)).mount(spec, Path({str(target)!r}), print)\n"
        f"open({str(target / 'left.txt')!r}, 'w').write('written before the crash')\n"
        "os._exit(9)\n"
    )
    before = set(state_root().iterdir()) if state_root().exists() else set()
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 9, result.stderr
    wait_until(lambda: str(target) not in openbai_mounts(), "unmount", 10.0)
    wait_until(lambda: set(state_root().iterdir()) <= before, "state cleaned up", 10.0)
    backend = AzureBlobStorage.from_options(
        azurite.account_name, VolumeKind.BLOB, {"connection_string": azurite.connection_string}
    )
    assert backend.read(container, "left.txt") == b"written before the crash"
    backend.close()

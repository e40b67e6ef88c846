"""A job's blob mount (FUSE) against the best direct use of azure-storage-blob, on Azurite.

``python -m bench blob_mount [--size-mib 1024] [--files 2000] [--file-kib 512]``

Azurite is started fresh (empty) for the run. Printed, each side by side in the same run:

* read one 1 GiB blob through the mount (``read`` of 1 MiB, as ``cp``/``dd`` do) vs the
  store's raw ranged-GET rate: 8 MiB ranges over 8 keep-alive connections with a SAS
  (``storage/blob_rest.py``, each received into a reused buffer and dropped), measured right
  before and right after the mount's read and averaged (the load drifts), and vs
  ``download_blob(max_concurrency=8)`` with 32 MiB ranges;
* read 2,000 blobs of 512 KiB: 16 threads reading whole files through the mount vs 16 threads
  downloading with the SDK;
* write 1 GiB: one file written through the mount (time to ``close``, which commits) vs
  ``upload_blob(max_concurrency=8)``.

With ``rclone`` on the PATH (Debian's ``rclone``), the same 1 GiB read and write also go
through an ``rclone mount`` of the container (its defaults: no VFS cache, streamed reads and
uploads), as extra lines: the measure behind choosing our own filesystem over it.

Goals from the issue: a big read >= 0.9x the raw ranged GETs, reads >= 0.9x the SDK, writes
>= 0.8x the SDK. The load average is printed with the read lines (the machine is shared).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

from bench._azurite import (
    ACCOUNT,
    KEY,
    Azurite,
    fresh_azurite,
    process_cpu,
    ratio_line,
    read_file,
    timed,
)
from openbai.mounts.fuse import FuseMounter
from openbai.mounts.settings import MountSettings
from openbai.plan.job_plan import MountSpec
from openbai.storage.blob_rest import BlobRestClient

MiB = 1024 * 1024


def service(azurite: Azurite) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(
        azurite.connection_string,
        max_single_put_size=8 * MiB,
        max_block_size=8 * MiB,
        max_single_get_size=32 * MiB,
        max_chunk_get_size=32 * MiB,
    )


def payload(size: int) -> bytes:
    block = os.urandom(64 * MiB)
    return (block * (size // len(block) + 1))[:size]


def raw_read(azurite: Azurite, container: str, name: str, size: int) -> float:
    """Seconds to GET ``size`` bytes in 8 MiB ranges over 8 keep-alive connections (the lean
    client of storage/blob_rest.py with a SAS), each range received into a buffer its
    thread reuses and dropped: the store's ranged-GET rate with the least client work."""
    sas = generate_container_sas(
        ACCOUNT, container, account_key=KEY, permission=ContainerSasPermissions(read=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )  # fmt: skip
    client = BlobRestClient(azurite.endpoint, lambda: sas)
    local = threading.local()

    def get(offset: int) -> int:
        if not hasattr(local, "buffer"):
            local.buffer = memoryview(bytearray(8 * MiB))
        into = local.buffer[: min(8 * MiB, size - offset)]
        return client.get_range_into(container, name, into, offset=offset)[0]

    get(0)  # the connections' first request is not the store's rate
    with ThreadPoolExecutor(8) as pool:
        seconds, got = timed(lambda: sum(pool.map(get, range(0, size, 8 * MiB))))
    client.close()
    assert got == size
    return seconds


def mounted(azurite: Azurite, container: str, root: Path):  # type: ignore[no-untyped-def]
    spec = MountSpec("data", "azure_blob", ACCOUNT, "blob", container,
                     options={"connection_string": azurite.connection_string})  # fmt: skip
    target = Path(tempfile.mkdtemp(dir=root)) / "data"
    return FuseMounter(MountSettings.from_env()).mount(spec, target, lambda line: None)


@contextlib.contextmanager
def rclone_mounted(azurite: Azurite, container: str, root: Path) -> Iterator[Path]:
    """The container mounted by ``rclone mount`` (as Debian ships it, default options)."""
    target = Path(tempfile.mkdtemp(dir=root))
    process = subprocess.Popen(
        ["rclone", "mount", f":azureblob:{container}", str(target), "--azureblob-use-emulator",
         "--azureblob-endpoint", azurite.endpoint],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not os.path.ismount(target):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("rclone mount did not come up")
            time.sleep(0.05)
        yield target
    finally:
        subprocess.run(["fusermount3", "-u", "-z", str(target)], capture_output=True)
        process.wait(timeout=60)


def write_file(path: Path, data: bytes) -> None:
    with open(path, "wb", buffering=0) as f:
        for offset in range(0, len(data), MiB):
            f.write(data[offset : offset + MiB])


def rclone_lines(
    azurite: Azurite, work: Path, data: bytes, direct: tuple[float, float]
) -> list[str]:
    """Write and read 1 file through an rclone mount; [] without rclone."""
    if shutil.which("rclone") is None:
        return ["  (rclone not installed: no rclone lines)"]
    mb = len(data) / 1e6
    with rclone_mounted(azurite, "bench", work) as root:
        write, _ = timed(lambda: write_file(root / "rclone.bin", data))
    with rclone_mounted(azurite, "bench", work) as root:
        read, got = timed(lambda: read_file(root / "direct.bin"))
    assert got == len(data)
    return [
        ratio_line("write 1 file: rclone mount vs upload_blob", mb / write, mb / direct[0],
                   "MB/s", "n/a"),
        ratio_line("read 1 file: rclone mount vs download_blob", mb / read, mb / direct[1],
                   "MB/s", "n/a"),
    ]  # fmt: skip


def run(args: argparse.Namespace, azurite: Azurite, work: Path) -> list[str]:
    client = service(azurite)
    container = client.create_container("bench")
    size = args.size_mib * MiB
    data = payload(size)
    lines = [f"blob mount vs azure-storage-blob on a fresh Azurite, {args.size_mib} MiB:"]

    # -- write 1 GiB ----------------------------------------------------------------------
    direct_w, _ = timed(lambda: container.upload_blob("direct.bin", data, max_concurrency=8))
    mount = mounted(azurite, "bench", work)

    mount_w, _ = timed(lambda: write_file(mount.path / "mounted.bin", data))
    mount.unmount()
    assert container.get_blob_client("mounted.bin").get_blob_properties().size == size
    mb = size / 1e6
    lines.append(ratio_line("write 1 file: mount vs upload_blob", mb / mount_w, mb / direct_w,
                            "MB/s", ">= 0.8x"))  # fmt: skip

    # -- read 1 GiB: raw GETs right before and after the mount's read ------------------------------
    load = os.getloadavg()[0]
    cpu = time.process_time()
    raw_before = raw_read(azurite, "bench", "direct.bin", size)
    raw_cpu = time.process_time() - cpu
    mount = mounted(azurite, "bench", work)
    daemon, cpu = process_cpu(mount.process.pid), time.process_time()
    mount_r, got = timed(lambda: read_file(mount.path / "direct.bin"))
    daemon, reader = process_cpu(mount.process.pid) - daemon, time.process_time() - cpu
    mount.unmount()
    assert got == size
    raw_after = raw_read(azurite, "bench", "direct.bin", size)
    raw = (raw_before + raw_after) / 2
    blob = container.get_blob_client("direct.bin")
    direct_r, _ = timed(lambda: blob.download_blob(max_concurrency=8).readall())
    lines.append(f"  load average {load:.2f} -> {os.getloadavg()[0]:.2f}; raw ranged GETs"
                 f" {mb / raw_before:.1f} MB/s before the mount's read, {mb / raw_after:.1f} after")  # fmt: skip
    lines.append(f"  CPU of the 1 GiB read: mount daemon {daemon:.2f} s + reader {reader:.2f} s,"
                 f" raw GETs' client {raw_cpu:.2f} s (the store's own not counted)")  # fmt: skip
    lines.append(ratio_line("read 1 file: mount vs raw ranged GETs (8 x 8 MiB)", mb / mount_r,
                            mb / raw, "MB/s", ">= 0.9x"))  # fmt: skip
    lines.append(ratio_line("read 1 file: mount vs download_blob", mb / mount_r, mb / direct_r,
                            "MB/s", ">= 0.9x"))  # fmt: skip
    lines += rclone_lines(azurite, work, data, (direct_w, direct_r))

    # -- read many small files --------------------------------------------------------------------
    small = args.file_kib * 1024
    names = [f"many/{i:05d}.bin" for i in range(args.files)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: container.upload_blob(n, data[:small]), names))
        direct_m, _ = timed(
            lambda: sum(pool.map(lambda n: len(container.download_blob(n).readall()), names))
        )
        mount = mounted(azurite, "bench", work)
        mount_m, got = timed(lambda: sum(pool.map(lambda n: read_file(mount.path / n), names)))
        mount.unmount()
    assert got == small * len(names)
    mb_m = small * len(names) / 1e6
    lines.append(ratio_line(f"read {args.files} x {args.file_kib} KiB: mount vs SDK, 16 threads",
                            mb_m / mount_m, mb_m / direct_m, "MB/s", ">= 0.9x"))  # fmt: skip
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench blob_mount")
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--file-kib", type=int, default=512)
    args = parser.parse_args(argv)
    with fresh_azurite() as azurite, tempfile.TemporaryDirectory(prefix="bench-mnt-") as work:
        lines = run(args, azurite, Path(work))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

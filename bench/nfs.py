"""A job's NFS mount (openbai's FUSE filesystem on libnfs) against direct libnfs and against a
plain local directory, on a fresh nfs-ganesha (the file servers' server) on this machine.

``python -m bench nfs [--size-mib 1024] [--files 2000] [--file-kib 512]``

Printed, side by side in the same run:

* write one 1 GiB file: through the mount (1 MiB ``write`` calls, as ``cp``/``dd`` do, timed
  to ``close``) vs a direct libnfs upload of the same bytes (``NfsStorage.upload``: 8 MiB
  calls) vs the same file written to a local directory (timed to ``fsync``);
* read it back: through the mount vs direct libnfs reads into memory (8 MiB calls) vs reading
  the local file;
* write and read 2,000 files of 512 KiB with 16 threads: through the mount vs direct libnfs
  (the backend's session pool) vs a local directory.

The goal (issue 15) is the mount at >= 0.8x of direct libnfs. The local directory is the
ceiling: the same disk without the network stack, ganesha and FUSE between; its reads are from
the page cache. Run it by hand: it needs ganesha and libnfs (``scripts/services/nfs.sh
install``) and FUSE.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench._azurite import ratio_line, timed
from openbai.mounts.base import Mount
from openbai.mounts.fuse import FuseMounter
from openbai.mounts.settings import MountSettings
from openbai.plan.job_plan import MountSpec
from openbai.storage.base import VolumeKind
from openbai.storage.nfs import NfsStorage
from openbai.storage.nfs_server import EXPORT_PATH, NfsServer, ServerState

MiB = 1024 * 1024
THREADS = 16


def options(state: ServerState) -> dict[str, object]:
    return {
        "host": state.host,
        "export": EXPORT_PATH,
        "version": 3,
        "port": state.port,
        "mount_port": state.mount_port,
    }


def mounted(state: ServerState, root: Path) -> Mount:
    """The export mounted as a job's node mounts a file server."""
    spec = MountSpec("nfs", "nfs", "bench", "file", EXPORT_PATH, options=options(state))
    target = Path(tempfile.mkdtemp(dir=root)) / "nfs"
    return FuseMounter(MountSettings.from_env()).mount(spec, target, lambda line: None)


def write_file(path: Path, data: bytes, *, sync: bool = False) -> None:
    with open(path, "wb", buffering=0) as f:
        for offset in range(0, len(data), MiB):
            f.write(data[offset : offset + MiB])
        if sync:
            os.fsync(f.fileno())


def read_file(path: Path) -> int:
    total = 0
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(MiB):
            total += len(chunk)
    return total


def read_direct(direct: NfsStorage, path: str, size: int) -> int:
    """The file read into memory in 8 MiB calls (libnfs pipelines each call's RPCs)."""
    reader = direct.open_file(EXPORT_PATH, path)
    try:
        return sum(len(reader.read(offset, 8 * MiB)) for offset in range(0, size, 8 * MiB))
    finally:
        reader.close()


def three_lines(
    name: str, mb: float, mount: float, direct: float, local: float, goal: str
) -> list[str]:
    return [
        ratio_line(f"{name}: mount vs libnfs", mb / mount, mb / direct, "MB/s", goal),
        ratio_line(f"{name}: mount vs local directory", mb / mount, mb / local, "MB/s", "n/a"),
    ]


def in_threads(names: list[str], action: Callable[[str], int]) -> tuple[float, int]:
    with ThreadPoolExecutor(THREADS) as pool:
        return timed(lambda: sum(pool.map(action, names)))


def run(args: argparse.Namespace, work: Path) -> list[str]:
    server = NfsServer(work / "server")
    state = server.start()
    direct = NfsStorage.from_options("bench", VolumeKind.FILE, options(state))
    local = work / "local"
    local.mkdir()
    size = args.size_mib * MiB
    block = os.urandom(64 * MiB)
    data = (block * (size // len(block) + 1))[:size]
    source = work / "source.bin"
    source.write_bytes(data)
    mb = size / 1e6
    lines = [
        f"NFS mount (FUSE on libnfs) vs direct libnfs vs a local directory, {args.size_mib} MiB:"
    ]
    try:
        # -- one big file ---------------------------------------------------------------
        direct_w, _ = timed(lambda: direct.upload(EXPORT_PATH, "direct.bin", source))
        local_w, _ = timed(lambda: write_file(local / "local.bin", data, sync=True))
        mount = mounted(state, work)
        mount_w, _ = timed(lambda: write_file(mount.path / "mounted.bin", data))
        mount.unmount()
        assert (server.data / "mounted.bin").stat().st_size == size
        lines += three_lines("write 1 file", mb, mount_w, direct_w, local_w, ">= 0.8x")

        direct_r, got = timed(lambda: read_direct(direct, "direct.bin", size))
        assert got == size
        local_r, got = timed(lambda: read_file(local / "local.bin"))
        assert got == size
        mount = mounted(state, work)
        mount_r, got = timed(lambda: read_file(mount.path / "direct.bin"))
        mount.unmount()
        assert got == size
        lines += three_lines("read 1 file", mb, mount_r, direct_r, local_r, ">= 0.8x")

        # -- many small files -----------------------------------------------------------
        small = data[: args.file_kib * 1024]
        mb_m = len(small) * args.files / 1e6
        names = [f"{i:05d}.bin" for i in range(args.files)]
        small_source = work / "small.bin"
        small_source.write_bytes(small)
        for where in ("direct", "mounted"):
            direct.make_dir(EXPORT_PATH, where)
        (local / "many").mkdir()

        def direct_put(name: str) -> int:
            return direct.upload(EXPORT_PATH, f"direct/{name}", small_source).size

        def local_put(name: str) -> int:
            write_file(local / "many" / name, small, sync=True)
            return len(small)

        direct_mw, _ = in_threads(names, direct_put)
        local_mw, _ = in_threads(names, local_put)
        mount = mounted(state, work)

        def mount_put(name: str) -> int:
            write_file(mount.path / "mounted" / name, small)
            return len(small)

        mount_mw, _ = in_threads(names, mount_put)
        mount.unmount()
        name = f"write {args.files} x {args.file_kib} KiB, {THREADS} threads"
        lines += three_lines(name, mb_m, mount_mw, direct_mw, local_mw, ">= 0.8x")

        direct_mr, got = in_threads(names, lambda n: len(direct.read(EXPORT_PATH, f"direct/{n}")))
        assert got == len(small) * len(names)
        local_mr, _ = in_threads(names, lambda n: read_file(local / "many" / n))
        mount = mounted(state, work)
        mount_mr, got = in_threads(names, lambda n: read_file(mount.path / "direct" / n))
        mount.unmount()
        assert got == len(small) * len(names)
        name = f"read {args.files} x {args.file_kib} KiB, {THREADS} threads"
        lines += three_lines(name, mb_m, mount_mr, direct_mr, local_mr, ">= 0.8x")
    finally:
        direct.close()
        server.remove()
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench nfs")
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--file-kib", type=int, default=512)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-nfs-", dir=os.environ.get("TMPDIR")) as work:
        lines = run(args, Path(work))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

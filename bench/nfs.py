"""A job's NFS mount (openbai's FUSE filesystem on libnfs) against direct libnfs and against a
plain local directory, on a fresh nfs-ganesha (the file servers' server) on this machine.

``python -m bench nfs [--size-mib 1024] [--files 2000] [--file-kib 512] [--rounds 3]``

Printed, side by side in the same run (the mount and direct libnfs in ``--rounds`` rounds,
which of them goes first changing every round, each step started after ``sync``: on a shared
machine a load change, or the disk still writing the step before, then lands on both sides;
each line's rate is over all rounds, with each round's ratio below it):

* write one 1 GiB file: through the mount (1 MiB ``write`` calls, as ``cp``/``dd`` do, timed
  to ``close``) vs a direct libnfs upload of the same bytes (``NfsStorage.upload``: 8 MiB
  calls) vs the same file written to a local directory (timed to ``fsync``);
* read it back: through the mount vs direct libnfs reads into memory (8 MiB calls) vs reading
  the local file;
* write and read 2,000 files of 512 KiB with 16 threads: through the mount vs direct libnfs
  (the backend's session pool) vs a local directory.

Under each line, where the CPU went (the rounds' mean): the mount's daemon, this process (the
reader or writer through the mount; the direct libnfs client) and ganesha, for the whole step
(one file) or a file (many): on these 2-core machines the ratios follow it.

The goal (issue 15) is the mount at >= 0.8x of direct libnfs. The local directory is the
ceiling: the same disk without the network stack, ganesha and FUSE between; its reads are from
the page cache. Run it by hand: it needs ganesha and libnfs (``scripts/services/nfs.sh
install``) and FUSE.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from bench._azurite import process_cpu, ratio_line, read_file, timed
from openbai.mounts.base import Mount
from openbai.mounts.fuse import FuseMount, FuseMounter
from openbai.mounts.settings import MountSettings
from openbai.plan.job_plan import MountSpec
from openbai.storage.base import VolumeKind
from openbai.storage.nfs import NfsStorage
from openbai.storage.nfs_server import EXPORT_PATH, NfsServer, ServerState

MiB = 1024 * 1024
THREADS = 16
T = TypeVar("T")


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


def read_direct(direct: NfsStorage, path: str, size: int) -> int:
    """The file read into memory in 8 MiB calls (libnfs pipelines each call's RPCs)."""
    reader = direct.open_file(EXPORT_PATH, path)
    try:
        return sum(len(reader.read(offset, 8 * MiB)) for offset in range(0, size, 8 * MiB))
    finally:
        reader.close()


def in_threads(names: list[str], action: Callable[[str], int]) -> int:
    with ThreadPoolExecutor(THREADS) as pool:
        return sum(pool.map(action, names))


@dataclass
class Cpu:
    """CPU seconds of one step: a mount's daemon, this process, the NFS server."""

    daemon: float = 0.0
    client: float = 0.0
    server: float = 0.0

    @property
    def total(self) -> float:
        return self.daemon + self.client + self.server

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(
            self.daemon - other.daemon, self.client - other.client, self.server - other.server
        )


def settled(action: Callable[[], T]) -> T:
    """``action``'s time, started with no dirty pages left by the step before (a write
    still going to disk slowed whatever came next)."""
    os.sync()
    return action()


class Comparison:
    """One line of the report: the mount's and direct libnfs's times over the rounds."""

    def __init__(self, name: str, mb: float, files: int = 1):
        self.name, self.mb, self.files = name, mb, files
        self.mount: list[float] = []
        self.direct: list[float] = []
        self.local = 0.0
        self.mount_cpu: list[Cpu] = []
        self.direct_cpu: list[Cpu] = []

    def cpu_line(self) -> str:
        # a step's seconds for one file; a file's milliseconds for many
        scale, unit = (1.0, "s a step") if self.files == 1 else (1000 / self.files, "ms a file")

        def mean(cpus: list[Cpu], part: str) -> float:
            return scale * float(sum(getattr(c, part) for c in cpus)) / max(1, len(cpus))

        m, d = self.mount_cpu, self.direct_cpu
        return (
            f"    CPU, {unit}: mount {mean(m, 'total'):.2f} (daemon {mean(m, 'daemon'):.2f},"
            f" this process {mean(m, 'client'):.2f}, ganesha {mean(m, 'server'):.2f}) vs direct"
            f" {mean(d, 'total'):.2f} (client {mean(d, 'client'):.2f},"
            f" ganesha {mean(d, 'server'):.2f})"
        )

    def lines(self) -> list[str]:
        ratios = ", ".join(f"{d / m:.2f}x" for m, d in zip(self.mount, self.direct, strict=True))
        rounds = len(self.mount)
        mount, direct = self.mb * rounds / sum(self.mount), self.mb * rounds / sum(self.direct)
        return [
            ratio_line(f"{self.name}: mount vs libnfs", mount, direct, "MB/s", ">= 0.8x"),
            f"    rounds: {ratios}",
            self.cpu_line(),
            ratio_line(
                f"{self.name}: mount vs local directory", mount, self.mb / self.local, "MB/s", "n/a"
            ),
        ]


@dataclass(frozen=True)
class Steps:
    """The timed steps of one round: direct libnfs in folder ``d``, the mount in ``m``; each
    gives its time and where the CPU went."""

    state: ServerState
    server: NfsServer
    direct: NfsStorage
    work: Path
    d: str
    m: str
    source: Path
    small_source: Path
    names: list[str]

    def cpu(self, mount: Mount | None) -> Cpu:
        """The CPU used so far by ``mount``'s daemon, this process and ganesha."""
        daemon = process_cpu(mount.process.pid) if isinstance(mount, FuseMount) else 0.0
        return Cpu(daemon, time.process_time(), process_cpu(self.state.pid))

    def measured(self, action: Callable[[], T], mount: Mount | None = None) -> tuple[float, T, Cpu]:
        """``action``'s time, result and CPU (of ``mount``'s daemon, this process, ganesha)."""
        before = self.cpu(mount)
        took, result = timed(action)
        return took, result, self.cpu(mount) - before

    def direct_write(self) -> tuple[float, Cpu]:
        took, _, cpu = self.measured(
            lambda: self.direct.upload(EXPORT_PATH, f"{self.d}/big.bin", self.source)
        )
        return took, cpu

    def mount_write(self) -> tuple[float, Cpu]:
        data = self.source.read_bytes()
        mount = mounted(self.state, self.work)
        took, _, cpu = self.measured(
            lambda: write_file(mount.path / self.m / "big.bin", data), mount
        )
        mount.unmount()
        assert (self.server.data / self.m / "big.bin").stat().st_size == len(data)
        return took, cpu

    def direct_read(self) -> tuple[float, Cpu]:
        size = self.source.stat().st_size
        took, got, cpu = self.measured(lambda: read_direct(self.direct, f"{self.d}/big.bin", size))
        assert got == size
        return took, cpu

    def mount_read(self) -> tuple[float, Cpu]:
        mount = mounted(self.state, self.work)
        took, got, cpu = self.measured(lambda: read_file(mount.path / self.d / "big.bin"), mount)
        mount.unmount()
        assert got == self.source.stat().st_size
        return took, cpu

    def direct_writes(self) -> tuple[float, Cpu]:
        def put(name: str) -> int:
            return self.direct.upload(EXPORT_PATH, f"{self.d}/{name}", self.small_source).size

        took, _, cpu = self.measured(lambda: in_threads(self.names, put))
        return took, cpu

    def mount_writes(self) -> tuple[float, Cpu]:
        small = self.small_source.read_bytes()
        mount = mounted(self.state, self.work)

        def put(name: str) -> int:
            write_file(mount.path / self.m / name, small)
            return len(small)

        took, _, cpu = self.measured(lambda: in_threads(self.names, put), mount)
        mount.unmount()
        return took, cpu

    def direct_reads(self) -> tuple[float, Cpu]:
        def get(name: str) -> int:
            return len(self.direct.read(EXPORT_PATH, f"{self.d}/{name}"))

        took, got, cpu = self.measured(lambda: in_threads(self.names, get))
        assert got == self.small_source.stat().st_size * len(self.names)
        return took, cpu

    def mount_reads(self) -> tuple[float, Cpu]:
        mount = mounted(self.state, self.work)
        took, got, cpu = self.measured(
            lambda: in_threads(self.names, lambda n: read_file(mount.path / self.d / n)), mount
        )
        mount.unmount()
        assert got == self.small_source.stat().st_size * len(self.names)
        return took, cpu


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
    small = data[: args.file_kib * 1024]
    small_source = work / "small.bin"
    small_source.write_bytes(small)
    names = [f"{i:05d}.bin" for i in range(args.files)]
    many = f"{args.files} x {args.file_kib} KiB, {THREADS} threads"
    mb, mb_m = size / 1e6, len(small) * args.files / 1e6
    write1, read1 = Comparison("write 1 file", mb), Comparison("read 1 file", mb)
    write_m = Comparison(f"write {many}", mb_m, args.files)
    read_m = Comparison(f"read {many}", mb_m, args.files)
    loads = []
    try:
        # the local directory: once (the ceiling, not the goal)
        write1.local = settled(
            lambda: timed(lambda: write_file(local / "l.bin", data, sync=True))[0]
        )
        read1.local, got = timed(lambda: read_file(local / "l.bin"))
        assert got == size
        (local / "many").mkdir()

        def local_put(name: str) -> int:
            write_file(local / "many" / name, small, sync=True)
            return len(small)

        write_m.local = settled(lambda: timed(lambda: in_threads(names, local_put))[0])
        read_m.local = timed(lambda: in_threads(names, lambda n: read_file(local / "many" / n)))[0]

        for round_ in range(args.rounds):
            # which side goes first changes every round: a load change lands on both
            mount_first = round_ % 2 == 1
            loads.append(os.getloadavg()[0])
            d, m = f"direct{round_}", f"mounted{round_}"
            for where in (d, m):
                direct.make_dir(EXPORT_PATH, where)

            steps = Steps(state, server, direct, work, d, m, source, small_source, names)
            for line, ours, theirs in (
                (write1, steps.mount_write, steps.direct_write),
                (read1, steps.mount_read, steps.direct_read),
                (write_m, steps.mount_writes, steps.direct_writes),
                (read_m, steps.mount_reads, steps.direct_reads),
            ):
                for side in ("mount", "direct") if mount_first else ("direct", "mount"):
                    took, cpu = settled(ours if side == "mount" else theirs)
                    getattr(line, side).append(took)
                    getattr(line, f"{side}_cpu").append(cpu)
            for where in (d, m):
                shutil.rmtree(server.data / where)
    finally:
        direct.close()
        server.remove()
    title = (
        f"NFS mount (FUSE on libnfs) vs direct libnfs vs a local directory, {args.size_mib} MiB,"
        f" {args.rounds} alternating rounds (1-min load at each round's start:"
        f" {', '.join(f'{load:.1f}' for load in loads)}):"
    )
    return [title, *write1.lines(), *read1.lines(), *write_m.lines(), *read_m.lines()]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench nfs")
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--file-kib", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-nfs-", dir=os.environ.get("TMPDIR")) as work:
        lines = run(args, Path(work))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

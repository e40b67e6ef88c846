"""``bai storage blob upload-batch`` against ``az storage blob upload-batch`` and the store itself.

``python -m bench upload [--small 10000] [--large 4] [--large-mib 256] [--skip-az]
[--embedded-only | --large-only] [--rounds 3]``

Every measurement gets its own fresh (empty) Azurite, since Azurite slows down as it fills.
azure-cli is installed from PyPI into its own venv under ``.services/azure-cli`` on first
use. Printed, side by side in the same run:

* the store's raw PUT rate: as many 1-8 KiB blobs as the small tree has, PUT with
  http.client and a SAS over 8 keep-alive connections (no file reading, no hashing),
  measured right before and right after bai's run and averaged;
* 10,000 files of 1-8 KiB: bai vs az (files/s), and bai vs the raw PUT rate;
* 4 files of 256 MiB, in rounds: bai's upload vs az's and vs the store's raw Put Block rate
  (the same bytes staged in 8 MiB blocks over 8 connections: what the store can take at
  best), bai's download-batch vs the store's raw ranged-GET rate (8 MiB ranges, 8
  connections), the raw rates measured right before and right after bai's and averaged;
* the same small tree to and from an embedded (local) account's containers and shares vs
  ``cp -r && sync``, and a second upload of it (every file unchanged, skipped), in rounds
  (``--rounds 3``), each round's cp measured before and after it.

Goals from the issue: small files >= 2x az and >= 0.9x the raw PUT rate; large files up and
down >= 0.9x the store's raw rates and never slower than az; embedded >= 0.5x cp.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

from bench._azurite import ACCOUNT, KEY, ROOT, Azurite, fresh_azurite, ratio_line, timed

MiB = 1024 * 1024
AZ_VENV = ROOT / ".services" / "azure-cli"


def small_tree(root: Path, count: int) -> Path:
    rng = random.Random(7)
    for i in range(count):
        path = root / f"d{i % 100:02d}" / f"{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(rng.randint(1024, 8192)))
    return root


def large_tree(root: Path, count: int, size: int) -> Path:
    root.mkdir(parents=True)
    block = os.urandom(64 * MiB)
    for i in range(count):
        with open(root / f"big{i}.bin", "wb") as f:
            for _ in range(size // len(block)):
                f.write(block)
    return root


def raw_put_rate(azurite: Azurite, container: str, count: int) -> float:
    """Small blobs PUT per second with http.client, 8 keep-alive connections."""
    sas = generate_container_sas(
        ACCOUNT, container, account_key=KEY, permission=ContainerSasPermissions(write=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )  # fmt: skip
    local = threading.local()
    bodies = [os.urandom(random.randint(1024, 8192)) for _ in range(64)]

    def put(i: int) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", azurite.port)
        headers = {"x-ms-blob-type": "BlockBlob", "x-ms-version": "2021-08-06"}
        conn.request("PUT", f"/{ACCOUNT}/{container}/raw/{i}?{sas}", bodies[i % 64], headers)
        response = conn.getresponse()
        response.read()
        assert response.status == 201, response.status

    with ThreadPoolExecutor(8) as pool:
        seconds, _ = timed(lambda: list(pool.map(put, range(count))))
    return count / seconds


def raw_block_rate(azurite: Azurite, container: str, count: int, size: int) -> float:
    """MB/s of ``count`` blobs of ``size`` staged as 8 MiB Put Blocks over 8 connections
    (http.client, a SAS, bytes from memory, no hashing), each then committed."""
    sas = generate_container_sas(
        ACCOUNT, container, account_key=KEY, permission=ContainerSasPermissions(write=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )  # fmt: skip
    local = threading.local()
    block = os.urandom(8 * MiB)
    headers = {"x-ms-version": "2021-08-06"}
    ids = [base64.b64encode(f"{i:032d}".encode()).decode() for i in range(size // len(block))]

    def request(path: str, body: bytes) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", azurite.port)
        conn.request("PUT", f"/{ACCOUNT}/{container}/{path}&{sas}", body, headers)
        response = conn.getresponse()
        response.read()
        assert response.status == 201, response.status

    def put(job: tuple[int, str]) -> None:
        request(f"raw{job[0]}?comp=block&blockid={quote(job[1], safe='')}", block)

    def run() -> None:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(put, [(i, block_id) for i in range(count) for block_id in ids]))
        latest = "".join(f"<Latest>{block_id}</Latest>" for block_id in ids)
        for i in range(count):
            request(f"raw{i}?comp=blocklist", f"<BlockList>{latest}</BlockList>".encode())

    seconds, _ = timed(run)
    return count * len(ids) * len(block) / 1e6 / seconds


def raw_range_rate(
    azurite: Azurite, container: str, names: list[str], size: int, into: Path | None = None
) -> float:
    """MB/s of reading the blobs ``names`` (each ``size`` bytes) as 8 MiB ranged GETs over 8
    connections (http.client, a SAS, no hashing): the store's best read rate. The bytes are
    dropped, or with ``into`` written at their place in a file per blob there and synced
    (what a download has to do at least: the disk may be the slower side)."""
    files = (
        {name: os.open(into / name, os.O_WRONLY | os.O_CREAT, 0o644) for name in names}
        if into
        else {}
    )
    sas = generate_container_sas(
        ACCOUNT, container, account_key=KEY, permission=ContainerSasPermissions(read=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )  # fmt: skip
    local = threading.local()
    step = 8 * MiB

    def get(job: tuple[str, int]) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", azurite.port)
        name, offset = job
        headers = {
            "x-ms-version": "2021-08-06",
            "x-ms-range": f"bytes={offset}-{offset + step - 1}",
        }
        conn.request("GET", f"/{ACCOUNT}/{container}/{name}?{sas}", headers=headers)
        response = conn.getresponse()
        data = response.read()
        assert response.status == 206, response.status
        if files:
            os.pwrite(files[name], data, offset)

    def run() -> None:
        jobs = [(name, offset) for name in names for offset in range(0, size, step)]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(get, jobs))
        if into is not None:
            os.sync()

    seconds, _ = timed(run)
    for fd in files.values():
        os.close(fd)
    return len(names) * size / 1e6 / seconds


def ensure_az() -> Path:
    """az from its own venv, installed from PyPI on first use (a few hundred MB).

    A marker written after ``az version`` worked tells a finished install from one that was
    interrupted (which left ``bin/az`` behind but not all of its packages): that is redone.
    """
    az, marker = AZ_VENV / "bin" / "az", AZ_VENV / ".installed"
    if marker.exists():
        return az
    print("installing azure-cli into .services/azure-cli (once, a few minutes) ...",
          file=sys.stderr)  # fmt: skip
    subprocess.run([sys.executable, "-m", "venv", str(AZ_VENV)], check=True)
    pip = [str(AZ_VENV / "bin" / "pip"), "install", "-q", "--timeout", "600", "--retries", "10"]
    subprocess.run([*pip, "azure-cli"], check=True)
    subprocess.run([str(az), "version", "-o", "none"], check=True, env=_az_env())
    marker.write_text("azure-cli\n")
    return az


def _az_env() -> dict[str, str]:
    return {**os.environ, "AZURE_CORE_COLLECT_TELEMETRY": "false",
            "AZURE_CONFIG_DIR": tempfile.mkdtemp(prefix="az-config-")}  # fmt: skip


def az_upload(az: Path, azurite: Azurite, container: str, source: Path) -> float:
    argv = [str(az), "storage", "blob", "upload-batch", "-d", container, "-s", str(source),
            "--connection-string", azurite.connection_string, "--only-show-errors", "-o", "none"]  # fmt: skip
    env = _az_env()
    seconds, result = timed(lambda: subprocess.run(argv, env=env, capture_output=True, text=True))
    shutil.rmtree(env["AZURE_CONFIG_DIR"], ignore_errors=True)
    if result.returncode != 0:
        raise RuntimeError(f"az failed: {result.stderr[-2000:]}")
    return seconds


class Bai:
    """The ``bai`` CLI of this checkout against its own data dir."""

    def __init__(self, home: Path):
        self.env = {**os.environ, "OPENBAI_HOME": str(home), "BAI_SERVER": ""}
        self.exe = str(Path(sys.executable).parent / "bai")
        self.cpu = 0.0  # CPU seconds (user + system) of the last command

    def __call__(self, *args: str) -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds, result = timed(
            lambda: subprocess.run([self.exe, *args], env=self.env, capture_output=True, text=True)
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        if result.returncode != 0:
            raise RuntimeError(f"bai {' '.join(args)} failed: {result.stderr[-2000:]}")
        return seconds

    def upload(self, azurite: Azurite, source: Path) -> float:
        """Seconds for ``bai storage blob upload-batch`` of ``source`` into a fresh Azurite."""
        name = f"acct{azurite.port}"
        self("storage", "account", "create", "-n", name, "--kind", "azure",
             "--connection-string", azurite.connection_string)  # fmt: skip
        return self("storage", "blob", "upload-batch", "--account", name, "-d", "data",
                    "-s", str(source), "--no-progress")  # fmt: skip

    def download(self, azurite: Azurite, target: Path) -> float:
        """Seconds for ``bai storage blob download-batch`` of what :meth:`upload` put there."""
        return self("storage", "blob", "download-batch", "--account", f"acct{azurite.port}",
                    "-s", "data", "-d", str(target), "--no-progress")  # fmt: skip


@contextmanager
def store() -> Iterator[Azurite]:
    """A fresh Azurite with an empty container ``data``."""
    with fresh_azurite() as azurite:
        BlobServiceClient.from_connection_string(azurite.connection_string).create_container("data")
        yield azurite


def embedded_lines(bai: Bai, small: Path, work: Path, count: int, rounds: int) -> list[str]:
    """The small tree to and from an embedded account's containers and shares, against
    ``cp -r && sync`` of it, ``rounds`` times.

    A round is: ``cp -r && sync``, then for a container and a share each an upload into a new
    volume, the same upload again (every file unchanged, skipped) and a download into a new
    folder, then ``cp -r && sync`` again; each bai time is set against the mean of the round's
    two cp times (the machine's load drifts). Every side ends with its files on disk (bai
    syncs once at the end, as ``sync`` does). The load average is printed with each round.
    """
    bai("storage", "account", "create", "-n", "embedded")
    lines = [f"embedded account ({count} small files) vs cp -r && sync, {rounds} rounds:"]
    results: dict[str, list[tuple[float, float]]] = {}

    def cp(target: Path) -> float:
        seconds, _ = timed(lambda: subprocess.run(
            f"cp -r {small} {target} && sync", shell=True, check=True))  # fmt: skip
        shutil.rmtree(target)
        return seconds

    for i in range(rounds):
        load = os.getloadavg()[0]
        cp_before = cp(work / "cp")
        seconds: dict[str, float] = {}
        for kind, noun in (("blob", "container"), ("file", "share")):
            volume = f"{noun}{i}"
            bai("storage", noun, "create", "--account", "embedded", "-n", volume)
            upload = ("storage", kind, "upload-batch", "--account", "embedded", "-d", volume,
                      "-s", str(small), "--no-progress")  # fmt: skip
            seconds[f"{kind} upload-batch"] = bai(*upload)
            seconds[f"{kind} upload-batch again (all skipped)"] = bai(*upload)
            seconds[f"{kind} download-batch"] = bai(
                "storage", kind, "download-batch", "--account", "embedded", "-s", volume,
                "-d", str(work / "down"), "--no-progress")  # fmt: skip
            shutil.rmtree(work / "down")
            bai("storage", noun, "delete", "--account", "embedded", "-n", volume, "-y")
        reference = (cp_before + cp(work / "cp")) / 2
        lines.append(f"  round {i + 1}: load average {load:.2f} -> {os.getloadavg()[0]:.2f},"
                     f" cp -r && sync {count / reference:.0f} files/s")  # fmt: skip
        for name, took in seconds.items():
            results.setdefault(name, []).append((count / took, count / reference))
    goals = {name: ">= 0.5x" for name in results if "again" not in name}
    return lines + summary(
        {f"{name}: bai vs cp": runs for name, runs in results.items()},
        "files/s",
        {f"{name}: bai vs cp": goal for name, goal in goals.items()},
    )


def large_lines(args: argparse.Namespace, bai: Bai, az: Path | None, work: Path) -> list[str]:
    """Big files up and down, ``args.rounds`` rounds of: the store's raw Put Block rate and
    raw ranged-GET rate (of those same blobs), bai's upload and download, the raw rates
    again (the machine's load drifts: bai is set against the mean of the two), az's upload,
    each on a fresh Azurite, one right after the other."""
    large = large_tree(work / "large", args.large, args.large_mib * MiB)
    size = args.large_mib * MiB
    mb = args.large * size / 1e6
    names = [f"raw{i}" for i in range(args.large)]
    results: dict[str, list[tuple[float, float]]] = {}
    lines = []
    for i in range(args.rounds):
        load = os.getloadavg()[0]

        def raw_rates() -> tuple[float, float, float, float]:
            """Raw Put Block, GET and GET-to-disk MB/s, and the Put Blocks' client CPU."""
            with store() as azurite:
                cpu = time.process_time()
                put = raw_block_rate(azurite, "data", args.large, size)
                cpu = time.process_time() - cpu
                get = raw_range_rate(azurite, "data", names, size)
                (work / "raw-down").mkdir()
                disk = raw_range_rate(azurite, "data", names, size, into=work / "raw-down")
                shutil.rmtree(work / "raw-down")
            return put, get, disk, cpu

        before = raw_rates()
        with store() as azurite:
            up = mb / bai.upload(azurite, large)
            up_cpu = bai.cpu
            down = mb / bai.download(azurite, work / "large-down")
        shutil.rmtree(work / "large-down")
        after = raw_rates()
        raw_put, raw_get, raw_disk, raw_cpu = (
            (b + a) / 2 for b, a in zip(before, after, strict=True)
        )
        results.setdefault("upload: bai vs the raw Put Block rate", []).append((up, raw_put))
        results.setdefault("download: bai vs raw ranged GETs", []).append((down, raw_get))
        results.setdefault("download: bai vs raw GETs to disk + sync", []).append((down, raw_disk))
        round_line = (f"  round {i + 1}: load average {load:.2f} -> {os.getloadavg()[0]:.2f};"
                      f" raw Put Block {before[0]:.1f} / {after[0]:.1f} MB/s (before / after bai),"
                      f" raw ranged GET {before[1]:.1f} / {after[1]:.1f} ({before[2]:.1f} / {after[2]:.1f}"
                      f" to disk), bai up {up:.1f}, down {down:.1f}; CPU of the upload: bai"
                      f" {up_cpu:.2f} s, raw Put Blocks' client {raw_cpu:.2f} s")  # fmt: skip
        if az is not None:
            with store() as azurite:
                az_up = mb / az_upload(az, azurite, "data", large)
            results.setdefault("upload: bai vs az", []).append((up, az_up))
            round_line += f", az up {az_up:.1f}"
        lines.append(round_line + " MB/s")
    shutil.rmtree(large)
    goals = {"upload: bai vs the raw Put Block rate": ">= 0.9x",
             "download: bai vs raw ranged GETs": ">= 0.9x", "upload: bai vs az": ">= 1x"}  # fmt: skip
    header = f"large files ({args.large} x {args.large_mib} MiB), {args.rounds} rounds:"
    return [header, *lines, *summary(results, "MB/s", goals)]


def summary(
    results: dict[str, list[tuple[float, float]]], unit: str, goals: dict[str, str]
) -> list[str]:
    """One line per measure: the means of the rounds, then each round's ratio."""
    lines = []
    for name, runs in results.items():
        each = ", ".join(f"{ours / theirs:.2f}x" for ours, theirs in runs)
        mean_ours = sum(ours for ours, _ in runs) / len(runs)
        mean_theirs = sum(theirs for _, theirs in runs) / len(runs)
        lines.append(ratio_line(name, mean_ours, mean_theirs, unit, goals.get(name, "report"))
                     + f"  each: {each}")  # fmt: skip
    return lines


def run(args: argparse.Namespace, work: Path) -> list[str]:
    bai = Bai(work / "home")
    if args.large_only:
        return large_lines(args, bai, None if args.skip_az else ensure_az(), work)
    small = small_tree(work / "small", args.small)
    if args.embedded_only:
        return embedded_lines(bai, small, work, args.small, args.rounds)
    lines = [f"upload-batch, each on a fresh Azurite ({args.small} small files, {args.large} x"
             f" {args.large_mib} MiB):"]  # fmt: skip

    # the machine's load drifts: the raw rate is taken right before and right after bai's run
    raw_rates = []
    with store() as azurite:
        raw_rates.append(raw_put_rate(azurite, "data", args.small))
    with store() as azurite:
        bai_small = args.small / bai.upload(azurite, small)
    with store() as azurite:
        raw_rates.append(raw_put_rate(azurite, "data", args.small))
    raw = sum(raw_rates) / len(raw_rates)
    lines.append(f"  store's raw PUT rate (http.client, 8 connections)        {raw:9.1f} PUT/s"
                 f"  (before {raw_rates[0]:.1f}, after {raw_rates[1]:.1f})")  # fmt: skip
    lines.append(ratio_line("small files: bai vs the raw PUT rate", bai_small, raw, "files/s",
                            ">= 0.9x"))  # fmt: skip
    az = None if args.skip_az else ensure_az()
    if az is not None:
        with store() as azurite:
            az_small = args.small / az_upload(az, azurite, "data", small)
        lines.append(ratio_line("small files: bai vs az", bai_small, az_small, "files/s",
                                ">= 2x"))  # fmt: skip

    if args.large:
        lines.extend(large_lines(args, bai, az, work))
    lines.extend(embedded_lines(bai, small, work, args.small, args.rounds))
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench upload")
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=4)
    parser.add_argument("--large-mib", type=int, default=256)
    parser.add_argument("--skip-az", action="store_true")
    parser.add_argument("--embedded-only", action="store_true", help="only the embedded section")
    parser.add_argument("--large-only", action="store_true", help="only the large files")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of the large and embedded sections"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as work:
        lines = run(args, Path(work))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""A fresh, empty Azurite for one benchmark run (scripts/services/azurite.sh), and helpers
shared by the storage benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "services" / "azurite.sh"
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, the same for every Azurite): not a secret.
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
T = TypeVar("T")


@dataclass(frozen=True)
class Azurite:
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint={self.endpoint};"
        )


@contextmanager
def fresh_azurite() -> Iterator[Azurite]:
    with tempfile.TemporaryDirectory(prefix="bench-azurite-") as location:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        subprocess.run(["bash", str(SCRIPT), "start", location, str(port)], check=True,
                       capture_output=True)  # fmt: skip
        try:
            yield Azurite(port)
        finally:
            subprocess.run(["bash", str(SCRIPT), "stop", location], check=False)


def timed(action: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def ratio_line(name: str, ours: float, theirs: float, unit: str, goal: str) -> str:
    return f"  {name:<52} {ours:9.1f} vs {theirs:9.1f} {unit:<6} = {ours / theirs:5.2f}x  (goal {goal})"


def process_cpu(pid: int) -> float:
    """Seconds of CPU (user + system) the process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_file(path: Path) -> int:
    """Read ``path`` in 1 MiB calls, as ``cat`` or a data loader would; the bytes read."""
    total = 0
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(1024 * 1024):
            total += len(chunk)
    return total

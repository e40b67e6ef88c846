"""How fast ``bai`` answers a read-only command, against a bare Python start in the same run.

``python -m bench cli [--runs 15]``

Each command runs as a fresh process in a scratch ``$OPENBAI_HOME`` holding one workspace,
experiment and cluster and one job that ran to its end (its stdout in an embedded share); printed is the best CPU time (user + system) of the runs and the best wall time,
each as a ratio to ``python -c pass``. CPU time is the steadier of the two on a shared
machine: wall time counts the other engineers' processes too. Goal: every read <= 10x.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

READS: list[list[str]] = [
    ["--help"],
    ["job", "--help"],
    ["workspace", "list"],
    ["workspace", "show", "-n", "ws"],
    ["experiment", "list", "-w", "ws"],
    ["job", "list", "-w", "ws", "-e", "exp"],
    ["job", "show", "-w", "ws", "-e", "exp", "-n", "j"],
    ["job", "file", "list", "-w", "ws", "-e", "exp", "-j", "j"],
    ["workspace", "list", "-o", "table"],
    ["workspace", "list", "-o", "tsv"],
    ["job", "list", "-w", "ws", "-e", "exp", "-o", "table"],
    ["job", "list", "-w", "ws", "-e", "exp", "-o", "tsv"],
    ["job", "file", "list", "-w", "ws", "-e", "exp", "-j", "j", "-o", "table"],
]

#: the job read above: one node, its stdout/stderr in share acct/logs (output must be on a volume)
JOB = {
    "properties": {
        "nodeCount": 1,
        "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
        "mountVolumes": {
            "azureFileShares": [
                {
                    "azureFileUrl": "https://acct.file.core.windows.net/logs",
                    "relativeMountPath": "logs",
                }
            ]
        },
        "customToolkitSettings": {"commandLine": "echo hi"},
    }
}


def best(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """The least CPU seconds and the least wall seconds of ``runs`` runs of ``argv``."""
    cpu = wall = float("inf")
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
        wall = min(wall, time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        cpu = min(cpu, used)
    return cpu, wall


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench cli")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as home:
        env = {**os.environ, "OPENBAI_HOME": home, "BAI_SERVER": ""}
        bai = [sys.executable, "-m", "openbai.cli.main"]
        job_json = os.path.join(home, "job.json")
        with open(job_json, "w") as f:
            json.dump(JOB, f)
        for words in (
            ["workspace", "create", "-n", "ws"],
            ["experiment", "create", "-w", "ws", "-n", "exp"],
            ["cluster", "create", "-w", "ws", "-n", "c1", "--nodes", "1"],
            ["storage", "account", "create", "-n", "acct"],
            ["storage", "share", "create", "--account", "acct", "-n", "logs"],
            ["job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "j", "-f", job_json],
            ["job", "wait", "-w", "ws", "-e", "exp", "-n", "j"],
        ):
            subprocess.run([*bai, *words, "-o", "none"], env=env, check=True)
        base_cpu, base_wall = best([sys.executable, "-c", "pass"], env, args.runs)
        print(f"python3 -c pass: cpu {base_cpu * 1e3:.1f} ms, wall {base_wall * 1e3:.1f} ms")
        for words in READS:
            cpu, wall = best([*bai, *words], env, args.runs)
            print(
                f"bai {' '.join(words):60s} cpu {cpu * 1e3:6.1f} ms = {cpu / base_cpu:4.1f}x"
                f"   wall {wall * 1e3:6.1f} ms = {wall / base_wall:4.1f}x   (goal <= 10x)"
            )
    return 0

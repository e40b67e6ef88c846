"""openbai on Slurm against Slurm itself, and the local executor against Slurm.

``python -m bench slurm [--jobs 1000] [--rounds 3] [--partition debug] [--slurm-state DIR]
[--program-floor]``
    N trivial jobs through openbai on a Slurm-backed cluster, and the same N as plain
    ``sbatch --wrap true``, in alternating rounds (which goes first changes every round, so a
    change in the machine's load lands on both): time from the first submission until every
    job has ended, and the ratio openbai / Slurm of each round (goal: at most 1.1 in every
    round). ``--program-floor`` adds, each round, the same N as plain jobs that run a Python
    doing nothing (``sbatch --wrap "python -c pass"``, this interpreter): its ratio to
    ``true`` is about the least a node runner, itself a Python program, can reach (1.02x,
    1.02x, 0.99x in the README's latest run).

``python -m bench slurm --local [--jobs 1000] ...``
    N trivial jobs on a 4-node local openbai cluster, and the same N as plain
    ``sbatch --wrap true``: jobs per second of each, and the ratio local / Slurm (goal: at
    least 10).

Slurm's client environment comes from the environment (``SLURM_CONF``) or from
``--slurm-state DIR``, a cluster started by ``scripts/services/slurm.sh start DIR``.
openbai runs in-process on a temporary data directory, with its dispatcher in a thread.
openbai's modules are byte-compiled first, as an installed package's are: a node runner
compiling them at every start (``PYTHONDONTWRITEBYTECODE`` is set on these machines) would
take a few tenths of a second more per job.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

import openbai
from bench.local import TRIVIAL, setup
from openbai.installation import App
from openbai.services import clusters, jobs
from openbai.store.models import Job

REPO = Path(__file__).resolve().parents[1]
ACTIVE = "PENDING,CONFIGURING,RUNNING,COMPLETING,SUSPENDED,REQUEUED"


def slurm_env(state: str | None) -> None:
    """Put the Slurm client environment of ``scripts/services/slurm.sh`` into os.environ."""
    if state is None:
        return
    script = REPO / "scripts" / "services" / "slurm.sh"
    out = subprocess.run(
        ["bash", str(script), "env", state], capture_output=True, text=True, check=True
    )
    for line in out.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            os.environ[key] = value


def precompile() -> None:
    """Byte-compile openbai, as installing a package does (the runners then load .pyc)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    package = str(Path(openbai.__file__).parent)
    subprocess.run([sys.executable, "-m", "compileall", "-q", package], env=env, check=True)


def plain_sbatch(count: int, partition: str, command: str = "true") -> tuple[float, float]:
    """Submit ``count`` × ``sbatch --wrap COMMAND``; (seconds to submit, seconds until all
    ended)."""
    name = f"bench-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    for _ in range(count):
        subprocess.run(
            ["sbatch", "--parsable", f"--job-name={name}", f"--partition={partition}",
             "--output=/dev/null", "--wrap", command],
            check=True, capture_output=True,
        )  # fmt: skip
    submitted = time.monotonic() - started
    while subprocess.run(
        ["squeue", "--noheader", f"--name={name}", f"--states={ACTIVE}", "--format=%i"],
        capture_output=True, text=True, check=True,
    ).stdout.strip():  # fmt: skip
        time.sleep(0.1)
    return submitted, time.monotonic() - started


def through_openbai(app: App, cluster: str, count: int, prefix: str) -> tuple[float, float]:
    """Submit ``count`` trivial jobs to ``cluster``; (seconds to submit, seconds until ended)."""
    names = [f"{prefix}{i}" for i in range(count)]
    started = time.monotonic()
    for name in names:
        jobs.create_job(app, "default", "ws", "exp", name, TRIVIAL, cluster=cluster)
    submitted = time.monotonic() - started
    while count_jobs(app, prefix, Job.execution_state.not_in(("succeeded", "failed"))):
        time.sleep(0.1)  # as often as squeue is asked for the plain jobs: little CPU taken
    total = time.monotonic() - started
    failed = count_jobs(app, prefix, Job.execution_state != "succeeded")
    if failed:
        print(f"  warning: {failed} of the {count} openbai jobs failed")
    return submitted, total


def count_jobs(app: App, prefix: str, condition: Any) -> int:
    """The round's jobs (named ``<prefix><i>``) that meet ``condition``: by prefix, not by a
    list of every name, whose query took the benchmark's process more CPU than the jobs'
    dispatcher (as little is taken as by the plain jobs' ``squeue --name``)."""
    with app.db.reading() as s:
        query = select(func.count()).select_from(Job).where(Job.name.startswith(prefix), condition)
        return int(s.scalar(query) or 0)


def line(what: str, count: int, submitted: float, total: float) -> str:
    return (
        f"  {what:<30} submitted in {submitted:6.1f} s, all ended after {total:7.1f} s"
        f" ({count / total:6.1f} jobs/s)"
    )


def compare_with_slurm(
    app: App, count: int, partition: str, rounds: int, *, program_floor: bool = False
) -> None:
    clusters.create_cluster(
        app,
        "default",
        "ws",
        "onslurm",
        {
            "properties": {
                # no GPU, as the plain jobs ask none (the default STANDARD_NC6 would make
                # every job ask Slurm for one: --gres=gpu:1)
                "vmSize": "STANDARD_D1_V2",
                "scaleSettings": {"manual": {"targetNodeCount": 1}},
                "openbai": {"executor": "slurm", "partition": partition},
            }
        },
    )
    ratios, floors = [], []
    contestants = ["sbatch", "openbai", *(["program"] if program_floor else [])]
    program = f"{shlex.quote(sys.executable)} -c pass"
    for round_ in range(1, rounds + 1):
        print(f"round {round_}: {count} trivial jobs on Slurm partition {partition}", end="")
        print(f" (load average {os.getloadavg()[0]:.1f}):", flush=True)
        shift = (round_ - 1) % len(contestants)  # who goes first changes every round
        times = {}
        for who in contestants[shift:] + contestants[:shift]:
            if who == "sbatch":
                times[who] = plain_sbatch(count, partition)
                print(line("sbatch --wrap true", count, *times[who]), flush=True)
            elif who == "program":
                times[who] = plain_sbatch(count, partition, program)
                print(line("sbatch --wrap 'python -c pass'", count, *times[who]), flush=True)
            else:
                times[who] = through_openbai(app, "onslurm", count, f"r{round_}s")
                print(line("openbai on Slurm", count, *times[who]), flush=True)
        ratios.append(times["openbai"][1] / times["sbatch"][1])
        print(f"  ratio openbai / Slurm: {ratios[-1]:.2f}x", flush=True)
        if program_floor:
            floors.append(times["program"][1] / times["sbatch"][1])
            print(f"  ratio python -c pass / Slurm (the floor): {floors[-1]:.2f}x", flush=True)
    print(f"openbai / Slurm over {count} jobs: {shown(ratios)} (goal: at most 1.1x in every round)")
    if program_floor:
        print(f"python -c pass / Slurm: {shown(floors)}")


def shown(ratios: list[float]) -> str:
    return ", ".join(f"{r:.2f}x" for r in ratios)


def compare_local_with_slurm(app: App, count: int, partition: str) -> None:
    print(f"{count} trivial jobs:")
    local = through_openbai(app, "c4", count, "l")
    print(line("openbai, 4-node local", count, *local), flush=True)
    slurm = plain_sbatch(count, partition)
    print(line(f"sbatch --wrap true ({partition})", count, *slurm))
    ratio = (count / local[1]) / (count / slurm[1])
    print(f"  throughput ratio local / Slurm: {ratio:.1f}x (goal: at least 10x)")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench slurm", description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds (openbai on Slurm)"
    )
    parser.add_argument("--partition", default="debug")
    parser.add_argument("--slurm-state", default=os.environ.get("OPENBAI_SLURM_STATE"))
    parser.add_argument("--local", action="store_true", help="a 4-node local cluster against Slurm")
    parser.add_argument(
        "--program-floor",
        action="store_true",
        help="also plain jobs running 'python -c pass' each round: what any program reaches",
    )
    args = parser.parse_args(argv)
    slurm_env(args.slurm_state)
    precompile()
    with tempfile.TemporaryDirectory(prefix="openbai-bench-") as home:
        app, dispatcher, stop = setup(Path(home))
        try:
            if args.local:
                compare_local_with_slurm(app, args.jobs, args.partition)
            else:
                compare_with_slurm(
                    app, args.jobs, args.partition, args.rounds, program_floor=args.program_floor
                )
        finally:
            stop.set()
            dispatcher.close()
            app.close()
    return 0

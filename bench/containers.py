"""What jobs' processes get from the runtime around them, measured.

``python -m bench containers [--lines 100000] [--ranks 2] [--runs 3] [--image-runs 1]
[--only mpi|image]``

* MPI output under load: ``--ranks`` ranks started at once by the toolkits' own ``mpirun``
  command line, each printing ``--lines`` lines of varied length through Python's
  block-buffered stdout. The reference is that command line run bare, in the same run:
  mpirun forwards chunks, so lines of two ranks mix. Under the collector of
  ``openbai/runtime/rank_output.py`` (as a job's first node runs it) the goal is 0 mixed
  lines, each rank's lines all there and in order, at a time close to the bare run's
  (the ratio collector / bare, best of ``--runs``).
* An image job: a trivial job (``true``) with ``containerSettings`` naming the local test
  image (``scripts/services/podman.sh image``), from ``jobs.create_job`` to the job's end on a
  local cluster, against the same ``podman run --rm IMAGE true`` typed by hand, in the same
  run: the goal is at most 1.15× (best of ``--image-runs``; one of each runs untimed first, so
  that neither pays for podman's cold caches).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from openbai.plan.job_plan import JobPlan, NodeSpec
from openbai.runtime.rank_output import collector_argv
from openbai.runtime.toolkits import ToolkitContext, host_file_lines, mpirun

RANK = """\
import os, sys
rank = os.environ["OMPI_COMM_WORLD_RANK"]
write = sys.stdout.write
for i in range({lines}):
    write(f"rank {{rank}} line {{i}} " + "x" * (i % 97) + "\\n")
"""

LINE = re.compile(r"rank (\d+) line (\d+) (x*)")


def mpi_command(work: Path, ranks: int, lines: int) -> str:
    script = work / "rank.py"
    script.write_text(RANK.format(lines=lines))
    nodes = [NodeSpec(i, f"n{i}", "127.0.0.1") for i in range(ranks)]
    host_file = work / "hostfile"
    host_file.write_text("\n".join(host_file_lines(nodes, ranks)) + "\n")
    plan = JobPlan(
        job_uid="bench",
        subscription_id="s",
        resource_group="rg",
        workspace="ws",
        experiment="e",
        job_name="mpi",
        cluster_name="c",
        cluster_uid="cu",
        output_segment="seg",
        tool_type="mpi",
        toolkit={},
        std_out_err_path_prefix=str(work),
        nodes=nodes,
    )
    ctx = ToolkitContext(plan, {}, str(host_file))
    return mpirun(ctx, ranks, f"{sys.executable} {script}")


def check(output: bytes, ranks: int, lines: int) -> tuple[int, bool]:
    """Mixed lines, and whether every rank's lines are all there in order."""
    mixed = 0
    seen: dict[str, list[int]] = {str(r): [] for r in range(ranks)}
    for line in output.decode(errors="replace").splitlines():
        m = LINE.fullmatch(line)
        if m is None or m[1] not in seen or len(m[3]) != int(m[2]) % 97:
            mixed += 1
        else:
            seen[m[1]].append(int(m[2]))
    return mixed, all(v == list(range(lines)) for v in seen.values())


def timed(argv: list[str], out: Path) -> tuple[float, bytes]:
    with open(out, "wb") as sink:
        started = time.perf_counter()
        subprocess.run(argv, stdout=sink, stderr=subprocess.DEVNULL, check=True)
        took = time.perf_counter() - started
    return took, out.read_bytes()


def mpi_output(work: Path, ranks: int, lines: int, runs: int) -> list[str]:
    if shutil.which("mpirun") is None:
        return ["MPI output: skipped, OpenMPI (mpirun) is not installed"]
    argv = ["bash", "-c", mpi_command(work, ranks, lines)]
    bare: list[float] = []
    merged: list[float] = []
    bare_mixed = mixed = 0
    complete = True
    for _ in range(runs):
        took, output = timed(argv, work / "bare.out")
        bare.append(took)
        bare_mixed = max(bare_mixed, check(output, ranks, lines)[0])
        took, output = timed(collector_argv("127.0.0.1", argv), work / "merged.out")
        merged.append(took)
        run_mixed, run_complete = check(output, ranks, lines)
        mixed, complete = max(mixed, run_mixed), complete and run_complete
    return [
        f"MPI output, {ranks} ranks x {lines:,} lines at once (best of {runs}):",
        f"  bare mpirun:        {min(bare):6.2f} s, mixed lines (worst run): {bare_mixed}",
        f"  openbai collector:  {min(merged):6.2f} s, mixed lines (worst run): {mixed}"
        f" (goal 0), every rank's lines whole and in order: {complete}",
        f"  ratio collector / bare: {min(merged) / min(bare):.2f}",
    ]


IMAGE_JOB_GOAL = 1.15


def test_image() -> str | None:
    """The local test image's name (built once), or None when podman or the image is missing."""
    if shutil.which("podman") is None:
        return None
    script = Path(__file__).resolve().parents[1] / "scripts" / "services" / "podman.sh"
    done = subprocess.run(["bash", str(script), "image"], capture_output=True, text=True)
    return done.stdout.strip() or None if done.returncode == 0 else None


def by_hand(image: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["podman", "run", "--rm", image, "true"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - started


def image_job(work: Path, runs: int) -> list[str]:
    image = test_image()
    if image is None:
        return [
            "image job: skipped, podman or its test image is missing (scripts/services/podman.sh)"
        ]
    # the embedded installation of bench/local (a 4-node local cluster c4, share bench/logs)
    from bench.local import TRIVIAL, setup, wait_all
    from openbai.services import jobs
    from openbai.store.models import Job

    app, _, stop = setup(work / "home")
    spec = {
        "properties": {
            **TRIVIAL["properties"],
            "containerSettings": {"imageSourceRegistry": {"image": image}},
        }
    }

    def through_openbai(name: str) -> float:
        started = time.perf_counter()
        jobs.create_job(app, "default", "ws", "exp", name, spec, cluster="c4")
        wait_all(app, [name])
        took = time.perf_counter() - started
        with app.db.reading() as s:
            job = s.query(Job).filter_by(name=name).one()
            if job.execution_state != "succeeded":
                raise RuntimeError(f"the image job {name} ended {job.execution_state}")
        return took

    try:
        by_hand(image)
        through_openbai("warm")
        hand = [by_hand(image) for _ in range(runs)]
        ours = [through_openbai(f"image-{i}") for i in range(runs)]
    finally:
        stop.set()
    ratio = min(ours) / min(hand)
    return [
        f"image job ({image}, `true`; best of {runs}):",
        f"  podman run --rm by hand:        {min(hand):6.2f} s",
        f"  through openbai (create->end):  {min(ours):6.2f} s",
        f"  ratio openbai / by hand: {ratio:.2f} (goal <= {IMAGE_JOB_GOAL}:"
        f" {'met' if ratio <= IMAGE_JOB_GOAL else 'NOT met'})",
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench containers")
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--image-runs", type=int, default=1)
    parser.add_argument("--only", choices=("mpi", "image"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-containers-") as work:
        if args.only != "image":
            print("\n".join(mpi_output(Path(work), args.ranks, args.lines, args.runs)))
        if args.only != "mpi":
            print("\n".join(image_job(Path(work), args.image_runs)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

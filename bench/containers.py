"""What jobs' processes get from the runtime around them, measured.

``python -m bench containers [--lines 100000] [--ranks 2] [--runs 3]``

* MPI output under load: ``--ranks`` ranks started at once by the toolkits' own ``mpirun``
  command line, each printing ``--lines`` lines of varied length through Python's
  block-buffered stdout. The reference is that command line run bare, in the same run:
  mpirun forwards chunks, so lines of two ranks mix. Under the collector of
  ``openbai/runtime/rank_output.py`` (as a job's first node runs it) the goal is 0 mixed
  lines, each rank's lines all there and in order, at a time close to the bare run's
  (the ratio collector / bare, best of ``--runs``).
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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench containers")
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-containers-") as work:
        print("\n".join(mpi_output(Path(work), args.ranks, args.lines, args.runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

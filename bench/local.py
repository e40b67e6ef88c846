"""The embedded default, measured: how fast jobs start, how many finish per second, and how
fast a line a job prints reaches ``bai job file stream``.

``python -m bench local [--jobs 1000] [--rounds 3] [--latency-jobs 50] [--lines 300]``

* submit → running latency (p50/p99), from the times the store records;
* N trivial jobs submitted → all finished on a 4-node local cluster (jobs/s); the comparison
  with Slurm's own throughput on the same machine is ``python -m bench slurm``;
* both again on a cluster created with ``--no-sandbox``, in the same run: what sealing every
  task off (bubblewrap, the job user, runtime/sandbox.py) costs, as ratios (goal ≤ 1.1×).
  The two clusters take turns (latency jobs alternate one by one; throughput runs in
  ``--rounds`` rounds, each cluster first in every other one), so that a change in the
  machine's load lands on both sides; each round's ratio is printed with the load average,
  and the CPU time a job cost (this process, the runners, their tasks and bubblewrap's
  namespace init, which no parent's rusage counts), measured by a cgroup v1 ``cpuacct``
  group of the benchmark's own (as root; where none can be made it is not printed): the
  time ratio swings with other work on the machine, the CPU per job much less;
* line written by a job → line shown by the stream (p50/p99), against reading the same file
  directly in a tight loop (the floor), and a check that no byte was lost.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

from openbai.installation import App
from openbai.scheduling.dispatcher import Dispatcher
from openbai.services import accounts, clusters, files, jobs, workspaces
from openbai.settings import Settings
from openbai.storage.base import VolumeKind
from openbai.store.models import Job

# a job's stdout must be on a volume (setup() makes share bench/logs)
LOGS = {
    "azureFileShares": [
        {"azureFileUrl": "https://bench.file.core.windows.net/logs", "relativeMountPath": "logs"}
    ]
}
TRIVIAL = {
    "properties": {
        "nodeCount": 1,
        "customToolkitSettings": {"commandLine": "true"},
        "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
        "mountVolumes": LOGS,
    }
}


class CpuMeter:
    """The CPU time of this process and of everything it starts, from a cgroup v1 cpuacct
    group it moves into (the runners' groups are made below it, and cpuacct.usage counts
    them too); None from :meth:`open` where none can be made (not root, cgroup v2)."""

    ROOT = Path("/sys/fs/cgroup/cpuacct")

    def __init__(self, group: Path, home: Path):
        self.group, self.home = group, home

    @classmethod
    def open(cls) -> CpuMeter | None:
        try:
            lines = Path("/proc/self/cgroup").read_text().splitlines()
            own = next(
                path
                for _, controllers, path in (line.split(":", 2) for line in lines)
                if "cpuacct" in controllers.split(",")
            )
            home = cls.ROOT / own.lstrip("/")
            group = home / f"openbai-bench-{os.getpid()}"
            group.mkdir()
            (group / "cgroup.procs").write_text(str(os.getpid()))
        except (OSError, StopIteration):
            return None
        return cls(group, home)

    def seconds(self) -> float:
        return int((self.group / "cpuacct.usage").read_text()) / 1e9

    def close(self) -> None:
        """Move this process and what is left of its children (the fork server, which ends
        with this process) back, and remove the group."""
        try:
            for pid in (self.group / "cgroup.procs").read_text().split():
                (self.home / "cgroup.procs").write_text(pid)
            self.group.rmdir()
        except OSError:
            pass  # a process ended meanwhile, or a runner's group is still below it


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def setup(home: Path) -> tuple[App, Dispatcher, threading.Event]:
    os.environ["OPENBAI_HOME"] = str(home)
    # an unsandboxed job runs as this process's user, with its HOME, and its tasks read that
    # user's ~/.bashrc (as a Batch AI job read its user's): a shell set up for pyenv takes
    # ~120 ms a task there, which the comparison would count against no sandbox
    (home / "user").mkdir(parents=True, exist_ok=True)
    os.environ["HOME"] = str(home / "user")
    app = App.open(Settings.load())
    dispatcher = Dispatcher(app)
    app.on_change = dispatcher.wake
    assert dispatcher.try_acquire()
    stop = threading.Event()
    threading.Thread(target=dispatcher.run, kwargs={"stop": stop}, daemon=True).start()
    workspaces.create_workspace(app, "default", "ws")
    workspaces.create_experiment(app, "default", "ws", "exp")
    accounts.create_account(app, "bench")
    accounts.create_volume(app, "bench", VolumeKind.FILE, "logs")
    clusters.create_cluster(
        app,
        "default",
        "ws",
        "c4",
        {"properties": {"scaleSettings": {"manual": {"targetNodeCount": 4}}}},
    )
    clusters.create_cluster(
        app,
        "default",
        "ws",
        "open4",
        {
            "properties": {
                "scaleSettings": {"manual": {"targetNodeCount": 4}},
                "openbai": {"sandbox": False},
            }
        },
    )
    return app, dispatcher, stop


def wait_all(app: App, names: list[str], exp: str = "exp") -> None:
    from sqlalchemy import func, select

    while True:
        with app.db.reading() as s:
            left = s.scalar(
                select(func.count())
                .select_from(Job)
                .where(Job.name.in_(names), Job.execution_state.not_in(("succeeded", "failed")))
            )
        if not left:
            return
        time.sleep(0.02)


def bench_latency(app: App, count: int, clusters: tuple[str, ...]) -> dict[str, float]:
    """Submit -> running, one job at a time, the clusters taking turns; each one's p50 (s)."""
    from sqlalchemy import select

    names: dict[str, list[str]] = {c: [] for c in clusters}
    for i in range(count):
        for cluster in clusters if i % 2 == 0 else reversed(clusters):
            name = f"lat-{cluster}-{i}"
            jobs.create_job(app, "default", "ws", "exp", name, TRIVIAL, cluster=cluster)
            names[cluster].append(name)
            wait_all(app, [name])
    p50s = {}
    for cluster in clusters:
        with app.db.reading() as s:
            rows = s.execute(
                select(Job.created_at, Job.start_time, Job.end_time).where(
                    Job.name.in_(names[cluster])
                )
            ).all()
        # a job that failed before it ran has no start: it has no submit -> running delay
        delays = [(start - created).total_seconds() for created, start, _ in rows if start]
        runs = [(end - start).total_seconds() for _, start, end in rows if start and end]
        print(
            f"submit -> running on {cluster}: p50 {percentile(delays, 50) * 1000:.1f} ms, "
            f"p99 {percentile(delays, 99) * 1000:.1f} ms; running -> ended p50 "
            f"{percentile(runs, 50) * 1000:.1f} ms ({count} jobs, one at a time)"
        )
        p50s[cluster] = percentile(delays, 50)
    return p50s


def bench_throughput(
    app: App, count: int, cluster: str, round_: int, cpu: CpuMeter | None
) -> tuple[float, float | None]:
    """N trivial jobs submitted -> all finished; the seconds that took, and the CPU seconds
    a job cost (None without a meter)."""
    names = [f"tp-{cluster}-{round_}-{i}" for i in range(count)]
    cpu_before = cpu.seconds() if cpu else 0.0
    started = time.monotonic()
    for name in names:
        jobs.create_job(app, "default", "ws", "exp", name, TRIVIAL, cluster=cluster)
    submitted = time.monotonic() - started
    wait_all(app, names)
    total = time.monotonic() - started
    per_job = (cpu.seconds() - cpu_before) / count if cpu else None
    used = f", CPU {per_job * 1000:.1f} ms a job" if per_job is not None else ""
    print(
        f"{count} trivial jobs on a 4-node local cluster ({cluster}): submitted in {submitted:.1f} s, all finished after {total:.1f} s ({count / total:.1f} jobs/s{used})"
    )
    return total, per_job


STREAMER = (
    "import time\n"
    "for i in range({lines}):\n"
    "    print(f'{{time.time():.6f}} line {{i}}', flush=True)\n"
    "    time.sleep(0.02)\n"
)


def bench_stream(app: App, home: Path, lines: int) -> None:
    # on the job's share: a sandboxed job sees nothing else of $OPENBAI_HOME
    script = home / "storage" / "bench" / "file" / "logs" / "streamer.py"
    script.write_text(STREAMER.format(lines=lines))
    body = {
        "properties": {
            "nodeCount": 1,
            "customToolkitSettings": {
                "commandLine": "python3 $AZ_BATCHAI_JOB_MOUNT_ROOT/logs/streamer.py"
            },
            "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
            "mountVolumes": LOGS,
        }
    }
    jobs.create_job(app, "default", "ws", "exp", "stream", body, cluster="c4")
    segment = jobs.get_job(app, "default", "ws", "exp", "stream").output_segment
    direct_path = (
        home / "storage" / "bench" / "file" / "logs" / segment / "stdouterr" / "stdout.txt"
    )
    direct: list[float] = []
    threading.Thread(target=follow_directly, args=(direct_path, direct), daemon=True).start()
    delays, buffer, received = [], b"", b""
    for chunk in files.follow_output_file(app, "default", "ws", "exp", "stream", "stdout.txt"):
        now = time.time()
        received += chunk
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        delays += [now - float(line.split()[0]) for line in complete if line]
    expected = len(direct_path.read_bytes())
    lost = (
        "no byte lost"
        if len(received) == expected and len(delays) == lines
        else f"LOST {expected - len(received)} bytes"
    )
    print(
        f"line written -> shown by the stream: p50 {percentile(delays, 50) * 1000:.1f} ms, p99 {percentile(delays, 99) * 1000:.1f} ms "
        f"({len(delays)} lines, {lost}); reading the file directly: p50 {percentile(direct, 50) * 1000:.1f} ms, "
        f"p99 {percentile(direct, 99) * 1000:.1f} ms; ratio p50 {percentile(delays, 50) / max(percentile(direct, 50), 1e-6):.1f}x"
    )


def follow_directly(path: Path, delays: list[float]) -> None:
    while not path.exists():
        time.sleep(0.001)
    with open(path, "rb") as f:
        buffer = b""
        while True:
            chunk = f.read()
            if chunk:
                now = time.time()
                buffer += chunk
                *complete, buffer = buffer.split(b"\n")
                delays.extend(now - float(line.split()[0]) for line in complete if line)
            else:
                time.sleep(0.001)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench local")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-jobs", type=int, default=50)
    parser.add_argument("--lines", type=int, default=300)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="openbai-bench-") as tmp:
        home = Path(tmp)
        cpu = CpuMeter.open()
        app, dispatcher, stop = setup(home)
        try:
            latency = bench_latency(app, args.latency_jobs, ("c4", "open4"))
            bench_stream(app, home, args.lines)
            ratios, extra = [], []
            for round_ in range(args.rounds):
                load = os.getloadavg()[0]
                order = ("c4", "open4") if round_ % 2 == 0 else ("open4", "c4")
                took = {c: bench_throughput(app, args.jobs, c, round_, cpu) for c in order}
                ratios.append(took["c4"][0] / took["open4"][0])
                sealed_cpu, open_cpu = took["c4"][1], took["open4"][1]
                costs = ""
                if sealed_cpu is not None and open_cpu is not None:
                    extra.append(sealed_cpu - open_cpu)
                    costs = (
                        f"; CPU a job {sealed_cpu * 1000:.1f} vs {open_cpu * 1000:.1f} ms "
                        f"({sealed_cpu / open_cpu:.2f}x)"
                    )
                print(
                    f"round {round_ + 1} ({order[0]} first): {ratios[-1]:.2f}x the time{costs}, "
                    f"load average {load:.2f} -> {os.getloadavg()[0]:.2f}"
                )
            sandbox_cpu = (
                f"; the sandbox's CPU a job: {', '.join(f'+{e * 1000:.1f} ms' for e in extra)}"
                if extra
                else ""
            )
            print(
                f"sandboxed / unsandboxed: submit -> running p50 "
                f"{latency['c4'] / latency['open4']:.2f}x, {args.jobs} trivial jobs "
                f"{', '.join(f'{r:.2f}x' for r in ratios)} the time in {args.rounds} rounds "
                f"(goal <= 1.1x){sandbox_cpu}"
            )
        finally:
            stop.set()
            dispatcher.wake()
            dispatcher.close()
            app.close()
            if cpu is not None:
                cpu.close()
    print(json.dumps({"note": "compare jobs/s with Slurm's own: python -m bench slurm"}))
    return 0

"""What the nodes of a job tell each other and the executor, as small JSON files in the run
directory (which every node of the job sees).

    node-<k>.prepared       node k finished job preparation ({"ok": bool})
    node-<k>.done           node k's primary tasks ended ({"exitCode": n})
    finished                the first node decided the job's work is over
    stop.requested          the executor asks every node to stop (the job was terminated)
    node-<k>.runner         pid of node k's runner
    node-<k>.alive          touched every second while node k's runner lives (multi-node)
    node-<k>.tasks          pids of node k's processes (to stop them if the runner dies)
    node-<k>.result.json    node k is through, mounts flushed ({"exitCode", "errors"})
    job.result.json         the job's outcome, written last by the first node

and, while the job runs, what holds secrets in clear (see RunDir.discard_secrets):

    plan.json               the job's plan: its secrets, its volumes' storage keys
    registry-auth-<k>/      node k's registry login while it pulls the job's image

Files are written atomically, so a reader sees a whole file or none.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from openbai.files import private_opener, write_private
from openbai.plan.job_plan import plain


class JobError(NamedTuple):
    code: str
    message: str
    details: Sequence[dict[str, str]] = ()


class Outcome:
    """A node's or a job's end, filled in by the runner as it goes (a plain class, as the
    plan's records are named tuples: see job_plan.py)."""

    def __init__(
        self,
        exit_code: int | None,
        errors: list[JobError] | None = None,
        start_time: float | None = None,
        end_time: float | None = None,
    ):
        self.exit_code = exit_code
        self.errors: list[JobError] = [] if errors is None else errors
        self.start_time = start_time
        self.end_time = end_time

    def __repr__(self) -> str:
        return (
            f"Outcome(exit_code={self.exit_code!r}, errors={self.errors!r}, "
            f"start_time={self.start_time!r}, end_time={self.end_time!r})"
        )

    def to_json(self) -> str:
        return json.dumps(plain(vars(self)))

    @classmethod
    def from_json(cls, text: str) -> Outcome:
        raw = json.loads(text)
        return cls(
            exit_code=raw["exit_code"],
            errors=[JobError(**e) for e in raw["errors"]],
            start_time=raw.get("start_time"),
            end_time=raw.get("end_time"),
        )


class RunDir:
    def __init__(self, path: Path):
        self.path = path

    def _write(self, name: str, data: Any) -> None:
        # coordination between the nodes of a running job: it need not survive a crash
        write_private(self.path / name, json.dumps(data), durable=False)

    def _read(self, name: str) -> Any | None:
        try:
            return json.loads((self.path / name).read_text())
        except FileNotFoundError:
            return None

    def mark_prepared(self, node: int, ok: bool) -> None:
        self._write(f"node-{node}.prepared", {"ok": ok})

    def prepared(self, node: int) -> bool | None:
        data = self._read(f"node-{node}.prepared")
        return None if data is None else bool(data["ok"])

    def set_port_base(self, node: int, base: int) -> None:
        """The first of the ports ``node``'s runner holds for the job's tasks (runtime/ports.py)."""
        self._write(f"node-{node}.ports", {"base": base})

    def port_base(self, node: int) -> int | None:
        data = self._read(f"node-{node}.ports")
        return None if data is None else int(data["base"])

    def mark_done(self, node: int, exit_code: int) -> None:
        self._write(f"node-{node}.done", {"exitCode": exit_code})

    def done(self, node: int) -> int | None:
        data = self._read(f"node-{node}.done")
        return None if data is None else int(data["exitCode"])

    def record_task(self, node: int, pid: int, started: float) -> None:
        """Remember a task process, so that it can be stopped even if its runner dies."""
        with open(self.path / f"node-{node}.tasks", "a", opener=private_opener) as f:
            f.write(f"{pid} {started}\n")

    def record_runner(self, node: int, pid: int, started: float) -> None:
        self._write(f"node-{node}.runner", [pid, started])

    def runners(self) -> dict[int, tuple[int, float]]:
        """The runners that started, by node: pid and start time."""
        found = {}
        for path in self.path.glob("node-*.runner"):
            pid, started = json.loads(path.read_text())
            found[int(path.name.split("-")[1].split(".")[0])] = (int(pid), float(started))
        return found

    def beat(self, node: int) -> None:
        """Say that ``node``'s runner is alive: touch its heartbeat file. Only its time
        changes (no data written, so this works on a full disk too); a reader compares it
        with what it saw before, on its own clock, so the hosts' clocks need not agree."""
        path = self.path / f"node-{node}.alive"
        try:
            os.utime(path)
        except FileNotFoundError:
            open(path, "a", opener=private_opener).close()

    def heartbeat(self, node: int) -> int | None:
        """The time ``node``'s runner last said it is alive (ns, its file system's clock);
        None before it first did."""
        try:
            # opened, not just stat'ed: on NFS an open revalidates the file's attributes
            # (close-to-open), where a stat may answer from a cache for seconds
            with open(self.path / f"node-{node}.alive", "rb") as f:
                return os.fstat(f.fileno()).st_mtime_ns
        except FileNotFoundError:
            return None

    def tasks(self) -> list[tuple[int, float]]:
        found = []
        for path in self.path.glob("node-*.tasks"):
            for line in path.read_text().splitlines():
                pid, started = line.split()
                found.append((int(pid), float(started)))
        return found

    def discard_secrets(self) -> None:
        """Remove what of the run holds secrets in clear, once no runner of the job needs it:
        the first node does at the job's end, the dispatcher whenever it records one (a
        runner lost or killed, a job Slurm ended or cancelled before it ran, a failed submit)."""
        (self.path / "plan.json").unlink(missing_ok=True)
        try:
            entries = list(os.scandir(self.path))
        except FileNotFoundError:  # never made, or deleted with the job
            return
        for entry in entries:
            if entry.name.startswith("registry-auth-"):
                shutil.rmtree(entry.path, ignore_errors=True)

    def request_stop(self) -> None:
        """Ask the job's runners to stop, as SIGTERM does (for runners no signal reaches)."""
        self._write("stop.requested", {})

    def stop_requested(self) -> bool:
        return (self.path / "stop.requested").exists()

    def mark_finished(self) -> None:
        self._write("finished", {})

    def is_finished(self) -> bool:
        return (self.path / "finished").exists()

    def write_node_result(self, node: int, outcome: Outcome) -> None:
        # read by the first node, which writes the job's outcome durably: after a crash
        # before that, the job is lost whatever its nodes reported
        write_private(self.path / f"node-{node}.result.json", outcome.to_json(), durable=False)

    def node_result(self, node: int) -> Outcome | None:
        try:
            return Outcome.from_json((self.path / f"node-{node}.result.json").read_text())
        except FileNotFoundError:
            return None

    def write_job_result(self, outcome: Outcome) -> None:
        write_private(self.path / "job.result.json", outcome.to_json())

    def job_result(self) -> Outcome | None:
        try:
            return Outcome.from_json((self.path / "job.result.json").read_text())
        except FileNotFoundError:
            return None


def wait_until(
    condition: Callable[[], bool], *, stop: Callable[[], bool], poll: float = 0.02
) -> bool:
    """Poll ``condition`` until it holds (True) or ``stop`` says to give up (False)."""
    while not condition():
        if stop():
            return False
        time.sleep(poll)
    return True

"""Jobs on a Slurm cluster: ``sbatch`` to submit, ``squeue`` to follow, ``scancel`` to stop.

Slurm queues the job and picks its nodes; the batch script (``sbatch_script.py``) starts one
node runner per allocated node, and the runners exchange files in the run directory, which
every node sees (a shared filesystem). The first node's ``job.result.json`` is the truth
about how a job ended. Slurm's own state only tells whether it is pending or running, and
why it ended when no result came (a node failed, the job was cancelled outside openbai, or
Slurm no longer knows it): such a job ends failed with that reason, never "running forever".

Every Slurm command openbai runs is in this module. Slurm is found the usual way (``PATH``,
``SLURM_CONF``); there is no accounting database, so finished jobs are looked up in
``squeue`` while Slurm remembers them (``MinJobAge``) and then in the job completion log.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openbai.errors import ExecutorError, ExecutorUnavailableError, SubmitError
from openbai.executors.base import (
    Executor,
    JobRef,
    NodeCounts,
    RunState,
    RunStatus,
    SubmitRequest,
)
from openbai.executors.sbatch_script import (
    FIXED_PORT_TOOLKITS,
    BatchJob,
    batch_script,
    sbatch_argv,
)
from openbai.files import write_private
from openbai.plan.job_plan import NodeSpec
from openbai.plan.results import JobError, Outcome, RunDir

#: job states after which Slurm runs nothing more of the job
ENDED = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "REVOKED",
        "SPECIAL_EXIT",
        "TIMEOUT",
    }
)
#: job states of a job that has no nodes yet
WAITING = frozenset({"PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD"})
#: why Slurm ended a job that no runner reported on: (error code, explanation)
ENDED_BECAUSE = {
    "BOOT_FAIL": ("NodeFailed", "its nodes failed to boot"),
    "CANCELLED": ("JobCancelled", "it was cancelled in Slurm, outside openbai"),
    "DEADLINE": ("JobWallClockTimeExceeded", "it reached its Slurm deadline"),
    "NODE_FAIL": ("NodeFailed", "a node of the job failed"),
    "OUT_OF_MEMORY": ("OutOfMemory", "it ran out of memory"),
    "PREEMPTED": ("JobPreempted", "it was preempted"),
    "TIMEOUT": ("JobWallClockTimeExceeded", "it reached its Slurm time limit"),
}
#: a job Slurm reports ended (or forgot) gets this long for its result file to appear
RESULT_GRACE_SECONDS = 5.0
#: a squeue listing serves every status() call within this many seconds
SNAPSHOT_SECONDS = 0.5
COMMAND_TIMEOUT_SECONDS = 60.0
#: after Slurm was found unreachable, calls fail at once for this long (each try takes ~10 s)
UNREACHABLE_RETRY_SECONDS = 5.0
#: what Slurm's clients say when slurmctld does not answer
_UNREACHABLE = (
    "Unable to contact slurm controller",
    "Socket timed out",
    "Zero Bytes were transmitted",
    "temporarily unable to accept job",
)
#: the handle of a submitted job, kept in its run directory (submission is idempotent)
SUBMITTED = "slurm-job.json"
#: ports of TensorFlow servers and PyTorch rendezvous on Slurm nodes (Batch AI's convention)
PORT_BASE = 2222
_BENIGN_SCANCEL = ("Invalid job id", "already completing or completed", "No active jobs")


@dataclass(frozen=True)
class SlurmJob:
    job_id: str
    state: str
    reason: str = ""


class SlurmExecutor(Executor):
    name = "slurm"
    queues_jobs = True

    def __init__(
        self,
        state_root: Path,
        *,
        python: str | None = None,
        node_roots: Path | None = None,
        **_: Any,
    ):
        self.python = python or sys.executable
        self.node_roots = node_roots or state_root / "slurm-nodes"
        self._lock = threading.Lock()
        self._snapshot: tuple[float, dict[str, SlurmJob]] = (0.0, {})
        self._ended_since: dict[str, float] = {}
        self._completion_log: Path | None | bool = False  # False: not looked up yet
        self._unreachable: tuple[float, str] = (-math.inf, "")

    # -- the contract ----------------------------------------------------------------------
    def node_specs(self, request_slots: list[int], cluster_key: str) -> list[NodeSpec]:
        """Placeholders: the runners learn their real hosts from the allocation."""
        name = cluster_key.rsplit("/", 1)[-1]
        return [NodeSpec(i, f"{name}-{i}", "", PORT_BASE) for i in range(len(request_slots))]

    def submit(self, request: SubmitRequest) -> JobRef:
        submitted = self.recover(request.run_dir)
        if submitted is not None:  # submitted before, by a dispatcher that died since
            return submitted
        plan = request.plan
        job = BatchJob(
            name=f"{plan.workspace}/{plan.experiment}/{plan.job_name}",
            run_dir=request.run_dir,
            node_count=plan.node_count,
            max_wall_clock_seconds=plan.max_wall_clock_seconds,
            python=self.python,
            node_roots=self.node_roots,
            priority=request.priority,
            partition=request.cluster_options.get("partition"),
            comment=f"openbai {request.run_dir}",
            exclusive=plan.tool_type in FIXED_PORT_TOOLKITS,
            gpus_per_node=plan.num_gpus,
            nodelist=tuple(request.cluster_options.get("nodelist") or ()),
            exclude=tuple(request.cluster_options.get("exclude") or ()),
        )
        # no fsync: the plan matters only until the job has run, and a lost one fails the job
        write_private(request.run_dir / "plan.json", plan.to_json(), durable=False)
        # the script and the handle below are the installation's own: private, as the plan
        write_private(job.script_path, batch_script(job), durable=False)
        argv = sbatch_argv(job)
        proc = self._run(argv)
        if proc.returncode != 0:
            raise SubmitError(
                f"sbatch failed (exit code {proc.returncode}): {proc.stderr.strip()}",
                command=argv,
                exit_code=proc.returncode,
                stdout=proc.stdout,
                stderr=proc.stderr,
            )
        data = {
            "run_dir": str(request.run_dir),
            "job_id": proc.stdout.strip().split(";")[0],
            "nodes": plan.node_count,
            "submitted": time.time(),
        }
        write_private(request.run_dir / SUBMITTED, json.dumps(data), durable=False)
        return JobRef(self.name, data)

    def recover(self, run_dir: Path) -> JobRef | None:
        try:
            return JobRef(self.name, json.loads((run_dir / SUBMITTED).read_text()))
        except FileNotFoundError:
            return None

    def status(self, ref: JobRef) -> RunStatus:
        run = RunDir(Path(ref.data["run_dir"]))
        job_id = str(ref.data["job_id"])
        outcome = run.job_result()
        if outcome is not None:
            return self._reported(ref, outcome)
        job = self._job(job_id, since=float(ref.data.get("submitted", 0.0)))
        if job is not None and job.state not in ENDED:
            self._ended_since.pop(job_id, None)
            return RunStatus(RunState.PENDING if job.state in WAITING else RunState.RUNNING)
        outcome = run.job_result()  # written just before the job ended
        if outcome is not None:
            return self._reported(ref, outcome)
        if _runners_started(run) and not self._grace_over(job_id):
            return RunStatus(RunState.RUNNING)
        self._ended_since.pop(job_id, None)
        return RunStatus(RunState.FINISHED, self._unreported(ref, job))

    def cancel(self, ref: JobRef, *, force: bool = False) -> None:
        """The runners see the stop request in the run directory, stop the job's processes
        and flush their outputs; ``force`` leaves it to Slurm's kill (SIGTERM, KillWait,
        SIGKILL). No signal is sent otherwise: Slurm would deliver it to every process of
        the job at once (and srun kills its tasks outright when it gets one)."""
        RunDir(Path(ref.data["run_dir"])).request_stop()
        job_id = str(ref.data["job_id"])
        self._scancel([job_id] if force else ["--state=PENDING", job_id])

    def node_counts(self, cluster_options: dict[str, Any], size: int) -> NodeCounts | None:
        states = self.host_states(cluster_options)
        if states is None:
            return NodeCounts()  # no node is known to be usable
        return count_states(states)

    def host_states(self, cluster_options: dict[str, Any]) -> dict[str, str] | None:
        """Each host of the cluster's partition with its Batch AI node state (idle, running,
        preparing, leaving, unusable) as ``sinfo`` tells it; None when Slurm cannot tell."""
        proc = self._sinfo_nodes(cluster_options, "%N|%T")
        return None if proc is None else host_states(proc.stdout)

    def job_hosts(self, job_id: str) -> list[str]:
        """The hosts Slurm allocated to the job, in the order of its nodes (as the batch script
        hands them to the runners); none while it waits, or once Slurm forgot it."""
        proc = self._run(["squeue", "--noheader", "--jobs", job_id, "--format=%N"])
        listed = proc.stdout.strip() if proc.returncode == 0 else ""
        if not listed or listed == "(null)":
            return []
        names = self._run(["scontrol", "show", "hostnames", listed])
        return names.stdout.split() if names.returncode == 0 else []

    def node_state_dir(self, host: str) -> Path:
        """What outlives a job on the host (the setup task's markers): the batch script's
        ``--node-state``."""
        return self.node_roots / host

    def host_gpus(self, cluster_options: dict[str, Any]) -> dict[str, int] | None:
        """Each host's GPUs as Slurm's GRES declares them (``sinfo %G``)."""
        proc = self._sinfo_nodes(cluster_options, "%N|%G")
        return None if proc is None else count_gpus(proc.stdout)

    def _sinfo_nodes(
        self, cluster_options: dict[str, Any], fields: str
    ) -> subprocess.CompletedProcess[str] | None:
        """``sinfo`` one line per node of the cluster's partition; None when Slurm cannot
        tell now."""
        argv = ["sinfo", "--noheader", "--Node", f"--format={fields}"]
        if cluster_options.get("partition"):
            argv.append(f"--partition={cluster_options['partition']}")
        try:
            proc = self._run(argv)
        except ExecutorUnavailableError:
            return None
        return proc if proc.returncode == 0 else None

    # -- what Slurm knows ------------------------------------------------------------------
    def _job(self, job_id: str, *, since: float) -> SlurmJob | None:
        """The job as Slurm lists it, or None when Slurm does not know it (any more)."""
        with self._lock:
            taken, jobs = self._snapshot
            if time.time() - taken > SNAPSHOT_SECONDS or (job_id not in jobs and taken < since):
                self._snapshot = (time.time(), self._list_jobs())
            return self._snapshot[1].get(job_id)

    def _grace_over(self, job_id: str) -> bool:
        first = self._ended_since.setdefault(job_id, time.monotonic())
        return time.monotonic() - first > RESULT_GRACE_SECONDS

    def _reported(self, ref: JobRef, outcome: Outcome) -> RunStatus:
        """The runners' outcome. A job that failed without openbai stopping it may have been
        stopped by Slurm (cancelled, node failure, time limit): then Slurm's reason comes
        first, instead of the signal's marks (JobTerminated, exit code 143)."""
        if (outcome.exit_code == 0 and not outcome.errors) or _cancel_requested(ref):
            return RunStatus(RunState.FINISHED, outcome)
        job_id = str(ref.data["job_id"])
        job = self._job(job_id, since=0.0)
        if job is not None and job.state not in ENDED and not self._grace_over(job_id):
            return RunStatus(RunState.RUNNING)  # Slurm has not recorded the job's end yet
        self._ended_since.pop(job_id, None)
        state = job.state if job is not None else self._completed_state(job_id)
        if state not in ENDED_BECAUSE:
            return RunStatus(RunState.FINISHED, outcome)
        errors = [e for e in outcome.errors if e.code not in ("JobTerminated", "JobFailed")]
        return RunStatus(
            RunState.FINISHED,
            Outcome(
                outcome.exit_code,
                [self._ended_error(job_id, job), *errors],
                outcome.start_time,
                outcome.end_time,
            ),
        )

    def _unreported(self, ref: JobRef, job: SlurmJob | None) -> Outcome:
        if _cancel_requested(ref):
            error = JobError("JobTerminated", "the job was terminated by the user")
        else:
            error = self._ended_error(str(ref.data["job_id"]), job)
        return Outcome(exit_code=-1, errors=[error])

    def _ended_error(self, job_id: str, job: SlurmJob | None) -> JobError:
        state = job.state if job is not None else self._completed_state(job_id)
        reason = f" ({job.reason})" if job is not None and job.reason not in ("", "None") else ""
        if state in ENDED_BECAUSE:
            code, why = ENDED_BECAUSE[state]
            return JobError(code, f"Slurm ended job {job_id} with {state}{reason}: {why}")
        if state is None:
            return JobError(
                "NodeLost",
                f"Slurm no longer knows job {job_id}, and no node reported the job's end",
            )
        return JobError(
            "NodeLost",
            f"Slurm job {job_id} ended ({state}{reason}) without a node reporting the job's end",
        )

    def _completed_state(self, job_id: str) -> str | None:
        """The final state of a job Slurm forgot, from its job completion log if it has one."""
        if self._completion_log is False:
            self._completion_log = self._find_completion_log()
        if not isinstance(self._completion_log, Path):
            return None
        return completed_state(self._completion_log, job_id)

    # -- Slurm commands --------------------------------------------------------------------
    def _run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        """Run a Slurm client; ExecutorUnavailableError when slurmctld does not answer."""
        since, message = self._unreachable
        if time.monotonic() - since < UNREACHABLE_RETRY_SECONDS:
            raise ExecutorUnavailableError(message)
        with _slurm_errors(argv):
            proc = subprocess.run(
                list(argv),
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=COMMAND_TIMEOUT_SECONDS,
            )
        if proc.returncode != 0 and any(text in proc.stderr for text in _UNREACHABLE):
            message = f"Slurm is unreachable ({argv[0]}: {proc.stderr.strip()})"
            self._unreachable = (time.monotonic(), message)
            raise ExecutorUnavailableError(message)
        return proc

    def _scancel(self, args: list[str]) -> None:
        proc = self._run(["scancel", *args])
        if proc.returncode != 0 and not any(text in proc.stderr for text in _BENIGN_SCANCEL):
            raise ExecutorError(f"scancel {' '.join(args)} failed: {proc.stderr.strip()}")

    def _list_jobs(self) -> dict[str, SlurmJob]:
        proc = self._run(["squeue", "--all", "--noheader", "--states=all", "--format=%i|%T|%r"])
        if proc.returncode != 0:
            raise ExecutorError(f"squeue failed: {proc.stderr.strip()}")
        return parse_squeue(proc.stdout)

    def _find_completion_log(self) -> Path | None:
        proc = self._run(["scontrol", "show", "config"])
        config = dict(re.findall(r"^(\w+)\s*=\s*(.*?)\s*$", proc.stdout, re.MULTILINE))
        if config.get("JobCompType") != "jobcomp/filetxt" or not config.get("JobCompLoc"):
            return None
        return Path(config["JobCompLoc"])


@contextmanager
def _slurm_errors(argv: Sequence[str]) -> Iterator[None]:
    """Failures to run a Slurm command, as ExecutorError."""
    try:
        yield
    except FileNotFoundError as exc:
        raise ExecutorError(
            f"{argv[0]} not found: install the Slurm client (slurm-client) on this machine"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise ExecutorUnavailableError(
            f"{argv[0]} did not answer within {COMMAND_TIMEOUT_SECONDS:g} s; is slurmctld up?"
        ) from exc
    except OSError as exc:
        raise ExecutorError(f"cannot run {argv[0]}: {exc}") from exc


# -- reading Slurm's output (pure) ---------------------------------------------------------
def parse_squeue(text: str) -> dict[str, SlurmJob]:
    """``squeue --format=%i|%T|%r`` lines to jobs by id."""
    jobs = {}
    for line in text.splitlines():
        parts = line.strip().split("|", 2)
        if len(parts) >= 2 and parts[0]:
            jobs[parts[0]] = SlurmJob(parts[0], parts[1], parts[2] if len(parts) > 2 else "")
    return jobs


def completed_state(log: Path, job_id: str, *, tail_bytes: int = 4 << 20) -> str | None:
    """A job's ``JobState`` in a ``jobcomp/filetxt`` log (its last line for the job)."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - tail_bytes))
            text = f.read().decode(errors="replace")
    except OSError:
        return None
    found = re.findall(rf"^JobId={re.escape(job_id)} .*?\bJobState=(\S+)", text, re.MULTILINE)
    return found[-1] if found else None


#: sinfo's long node state (without flags) -> Batch AI's node state
_NODE_STATES = {
    "allocated": "running",
    "mixed": "running",
    "completing": "running",
    "idle": "idle",
    "planned": "idle",
    "reserved": "idle",
    "powered_down": "idle",
    "cloud": "idle",
    "unknown": "preparing",
    "future": "preparing",
    "powering_up": "preparing",
    "reboot_issued": "preparing",
    "draining": "leaving",
    "powering_down": "leaving",
    "reboot_requested": "leaving",
}
#: state flags sinfo appends: not responding, powering up, powering down (soon)
_FLAG_STATES = {"*": "unusable", "#": "preparing", "%": "leaving", "!": "leaving"}


def node_state(text: str) -> str:
    """One sinfo ``%T`` value (``idle``, ``mixed``, ``down*``, ``idle~`` ...) as a Batch AI
    node state: idle, running, preparing, leaving or unusable (down, drained, failed ...)."""
    state = text.strip().lower()
    base = state.rstrip("*~#!%$@^-+")
    for flag, meaning in _FLAG_STATES.items():
        if flag in state[len(base) :]:
            return meaning
    return _NODE_STATES.get(base, "unusable")


def host_states(sinfo: str) -> dict[str, str]:
    """``sinfo --Node --format=%N|%T`` lines (a node may be listed once per partition) as
    each host's Batch AI node state."""
    states: dict[str, str] = {}
    for line in sinfo.splitlines():
        name, sep, state = line.strip().partition("|")
        if sep:
            states[name] = node_state(state)
    return states


def count_states(states: dict[str, str]) -> NodeCounts:
    """Hosts by Batch AI node state, counted."""
    counts = {s: 0 for s in ("idle", "running", "preparing", "unusable", "leaving")}
    for state in states.values():
        counts[state] += 1
    return NodeCounts(**counts)


def count_nodes(sinfo: str) -> NodeCounts:
    """``sinfo --Node --format=%N|%T`` lines, counted by Batch AI node state."""
    return count_states(host_states(sinfo))


#: one GRES of sinfo's ``%G``: ``gpu:2``, ``gpu:a100:4``, ``gpu:a100:4(S:0-1)``, ``gpu:1(IDX:0)``
_GPU_GRES = re.compile(r"^gpu(?::[^:(]+)?:(\d+)(?:\(.*\))?$")


def gpus_of(gres: str) -> int:
    """GPUs in one node's ``%G`` value (``gpu:2,mps:100``, ``(null)``): all its gpu types."""
    total = 0
    # split at commas outside parentheses ("gpu:4(S:0-1)" holds one)
    for item in re.split(r",(?![^(]*\))", gres.strip()):
        match = _GPU_GRES.match(item.strip())
        if match:
            total += int(match.group(1))
    return total


def count_gpus(sinfo: str) -> dict[str, int]:
    """``sinfo --Node --format=%N|%G`` lines as GPUs by host."""
    hosts: dict[str, int] = {}
    for line in sinfo.splitlines():
        name, sep, gres = line.strip().partition("|")
        if sep:
            hosts[name] = gpus_of(gres)
    return hosts


def _runners_started(run: RunDir) -> bool:
    return any(run.path.glob("node-*.log"))


def _cancel_requested(ref: JobRef) -> bool:
    return RunDir(Path(ref.data["run_dir"])).stop_requested()

"""pytest plugin: a real two-node Slurm cluster (``scripts/services/slurm.sh``) for openbai's tests.

Load it from the root conftest with ``pytest_plugins = ["slurm_fixture"]`` (the ``tests`` directory
must be on ``sys.path``; this is a plain module, no package needed).

The session-scoped fixture ``slurm_cluster`` yields a :class:`SlurmCluster`:

* if ``OPENBAI_SLURM_STATE`` names a state dir whose cluster is running (CI starts it once with
  ``scripts/services/slurm.sh start "$OPENBAI_SLURM_STATE"``), that cluster is used and left running;
* otherwise the cluster is started in ``$OPENBAI_SLURM_STATE`` (or the script's default
  ``.services/slurm``) and stopped at the end of the session; a cluster that was already running
  there is reused and left running;
* if Slurm is not installed (``/usr/sbin/slurmctld`` missing) the test is skipped -- unless the ``CI``
  environment variable is set, where a missing Slurm is an error.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO_DIR = Path(__file__).resolve().parent.parent
SCRIPT = REPO_DIR / "scripts" / "services" / "slurm.sh"
SLURMCTLD = Path("/usr/sbin/slurmctld")
DEFAULT_STATE_DIR = REPO_DIR / ".services" / "slurm"

# job states after which a job will not run any more
FINAL_STATES = frozenset(
    {
        "COMPLETED",
        "CANCELLED",
        "FAILED",
        "TIMEOUT",
        "NODE_FAIL",
        "PREEMPTED",
        "BOOT_FAIL",
        "DEADLINE",
        "OUT_OF_MEMORY",
    }
)


@dataclass(frozen=True)
class SlurmCluster:
    """A running Slurm cluster.

    ``env`` is a complete environment (``os.environ`` plus ``slurm_env``) for running Slurm client
    commands (``sbatch``, ``srun``, ``squeue``, ``scontrol``, ``scancel``, ``sinfo``);
    ``slurm_env`` holds only the variables the cluster adds (``SLURM_CONF``, ``OPENBAI_SLURM_STATE``).
    """

    env: dict[str, str]
    slurm_env: dict[str, str]
    partition: str
    nodes: list[str]
    state_dir: Path
    started_here: bool = field(default=False, compare=False)

    def run(
        self, args: Sequence[str], *, check: bool = True, timeout: float = 60, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run a Slurm client command with the cluster's environment; text output captured."""
        return subprocess.run(
            list(args),
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
            **kwargs,
        )

    def job_info(self, job_id: str) -> dict[str, str] | None:
        """``scontrol show job`` as a dict, or None once Slurm no longer knows the job."""
        proc = self.run(["scontrol", "show", "job", "-o", str(job_id)], check=False)
        if proc.returncode != 0:
            if "Invalid job id" in proc.stderr:
                return None
            raise RuntimeError(f"scontrol show job {job_id} failed: {proc.stderr.strip()}")
        info: dict[str, str] = {}
        for token in shlex.split(proc.stdout.strip().splitlines()[0]):
            key, sep, value = token.partition("=")
            if sep:
                info.setdefault(key, value)
        return info

    def job_state(self, job_id: str) -> str | None:
        """The job's state (e.g. PENDING, RUNNING, COMPLETED), None if Slurm forgot it."""
        info = self.job_info(job_id)
        return None if info is None else info.get("JobState")

    def wait_job(
        self, job_id: str, states: frozenset[str] | set[str] = FINAL_STATES, timeout: float = 60
    ) -> str | None:
        """Poll until the job reaches one of ``states``; returns that state (None: job purged)."""
        deadline = time.monotonic() + timeout
        state = self.job_state(job_id)
        while state is not None and state not in states:
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {state} after {timeout}s")
            time.sleep(0.2)
            state = self.job_state(job_id)
        return state

    @contextlib.contextmanager
    def nodes_taken(self, seconds: int) -> Iterator[str]:
        """Every node taken whole by a plain job (its id), running when this yields and
        cancelled on leaving: what openbai submits meanwhile waits in Slurm's queue."""
        blocker = self.run(
            ["sbatch", "--parsable", f"-N{len(self.nodes)}", "--exclusive", "-p", self.partition,
             "-o", "/dev/null", "--wrap", f"sleep {seconds}"]
        ).stdout.strip()  # fmt: skip
        try:
            self.wait_job(blocker, {"RUNNING"}, timeout=30)
            yield blocker
        finally:
            self.run(["scancel", blocker], check=False)

    def forward_port(self, port: int) -> None:
        """Let jobs on the nodes reach the host's ``127.0.0.1:port`` at their own ``127.0.0.1:port``."""
        _script("forward", str(port), "--state-dir", str(self.state_dir))

    def unforward_port(self, port: int) -> None:
        _script("unforward", str(port), "--state-dir", str(self.state_dir))


def _script(
    *args: str, check: bool = True, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"{SCRIPT.name} {' '.join(args)} failed (exit {proc.returncode}):\n"
            f"{proc.stdout}\n{proc.stderr}"
        )
    return proc


def _parse_env(text: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key:
            env[key] = value
    return env


def _cluster(state_dir: Path, started_here: bool) -> SlurmCluster:
    slurm_env = _parse_env(_script("env", str(state_dir)).stdout)
    env: Mapping[str, str] = {**os.environ, **slurm_env}
    return SlurmCluster(
        env=dict(env),
        slurm_env=slurm_env,
        partition="debug",
        nodes=["node1", "node2"],
        state_dir=state_dir,
        started_here=started_here,
    )


def _running(state_dir: Path) -> bool:
    return _script("status", str(state_dir), check=False, timeout=60).returncode == 0


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    in_ci = bool(os.environ.get("CI"))
    if not SLURMCTLD.exists():
        reason = (
            f"Slurm is not installed ({SLURMCTLD} missing; run scripts/services/slurm.sh install)"
        )
        if in_ci:
            pytest.fail(f"{reason} -- in CI a missing Slurm is an error", pytrace=False)
        pytest.skip(reason)

    state_dir = Path(os.environ.get("OPENBAI_SLURM_STATE") or DEFAULT_STATE_DIR).resolve()
    if _running(state_dir):
        yield _cluster(state_dir, started_here=False)
        return

    if os.geteuid() != 0:
        reason = "starting the local Slurm cluster needs root (network namespaces)"
        if in_ci:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    try:
        _script("start", str(state_dir))
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"could not start the Slurm cluster: {exc}", pytrace=False)
    try:
        yield _cluster(state_dir, started_here=True)
    finally:
        _script("stop", str(state_dir), check=False)


@pytest.fixture
def slurm_env(slurm_cluster: SlurmCluster, monkeypatch: pytest.MonkeyPatch) -> SlurmCluster:
    """The Slurm client environment, for this process and the dispatcher it starts."""
    for key, value in slurm_cluster.slurm_env.items():
        monkeypatch.setenv(key, value)
    return slurm_cluster

"""A node exec's command on a Slurm node, sealed off as a job's task is there.

``srun`` starts a step as the Slurm job's owner: root, for an installation run as root. The
command must not run as that: like a job's task (and a local node exec, services/nodes.py) it
runs in bubblewrap as the job user, sees nothing of the installation (its home, the run
directories, every node root), no munge socket, and of the environment what a job keeps.
With ``--job-node-roots`` (a running job's node exec: the folder of the node roots of every
host, where the job's runner has ``<host>/<Slurm job id>``) the node's mount root and job temp
folders are bound, writable, as the job has them, and with ``--run-dir`` the folders of the
embedded volumes its plan mounts (from the volume's directory through no link, as the job's
own sandbox binds them: never by following a link found on the node).

``python -m openbai.runtime.node_shell [--job-node-roots DIR [--run-dir DIR]] --hide DIR...
-- COMMAND...``
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from openbai.errors import OpenBaiError
from openbai.mounts.link import embedded_folders
from openbai.plan.job_plan import JobPlan
from openbai.runtime.inherited_env import inherited_env
from openbai.runtime.sealing import node_sandbox


def sandboxed(
    argv: list[str], node_root: Path | None, hidden: list[Path], plan: JobPlan | None = None
) -> tuple[list[str], dict[str, str], list[int]]:
    """``argv`` in the node's sandbox, its environment, and the descriptors it binds from
    (to pass on)."""
    env = inherited_env(os.environ, keep=("SLURM_",))
    writable = [] if node_root is None else [node_root / "mounts", node_root / "jobs"]
    sandbox = node_sandbox(
        hidden=hidden,
        writable=[p for p in writable if p.is_dir()],
        env=env,
        gpus=_step_gpus(env),
    )
    specs = [*plan.cluster_mounts, *plan.job_mounts] if plan is not None else []
    sandbox.bind_embedded(embedded_folders(specs))
    cwd = node_root / "jobs" if node_root is not None and (node_root / "jobs").is_dir() else None
    env.update(sandbox.user_env(cwd or Path("/tmp")))
    if node_root is not None:  # as a local node exec has them
        env["AZ_BATCHAI_MOUNT_ROOT"] = str(node_root / "mounts")
        env["AZ_BATCHAI_JOB_TEMP_DIR"] = str(node_root / "jobs")
    sealed = sandbox.argv(argv, cwd or Path("/tmp"))
    return sealed, env, sandbox.take_fds()


def _plan(run_dir: Path) -> JobPlan | None:
    """The running job's plan (its runner's), None once the job has ended."""
    try:
        return JobPlan.read(run_dir / "plan.json")
    except FileNotFoundError:
        return None


def _step_gpus(env: dict[str, str]) -> list[int] | None:
    """The GPUs Slurm gave the step (none: no GPU device is shown; not by index: all)."""
    for name in ("SLURM_STEP_GPUS", "SLURM_JOB_GPUS", "CUDA_VISIBLE_DEVICES"):
        value = env.get(name, "").strip()
        if value:
            named = [g for g in value.split(",") if g]
            return [int(g) for g in named] if all(g.isdigit() for g in named) else None
    return []


def main(args: list[str] | None = None) -> int:
    given = sys.argv[1:] if args is None else args
    if "--" not in given or given.index("--") == len(given) - 1:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    split = given.index("--")
    parser = argparse.ArgumentParser(prog="python -m openbai.runtime.node_shell")
    parser.add_argument("--job-node-roots", type=Path, default=None)
    parser.add_argument("--run-dir", type=Path, default=None)
    parser.add_argument("--hide", type=Path, action="append", default=[])
    parsed = parser.parse_args(given[:split])
    try:
        node_root = None
        if parsed.job_node_roots is not None:  # the step's host and job: Slurm's own names
            host, job = os.environ["SLURMD_NODENAME"], os.environ["SLURM_JOB_ID"]
            node_root = parsed.job_node_roots / host / job
        plan = _plan(parsed.run_dir) if parsed.run_dir is not None else None
        argv, env, fds = sandboxed(given[split + 1 :], node_root, parsed.hide, plan)
    except OpenBaiError as exc:
        print(f"openbai: cannot seal the command off on this node: {exc.message}", file=sys.stderr)
        return 126
    for fd in fds:  # bubblewrap binds from them
        os.set_inheritable(fd, True)
    os.execvpe(argv[0], argv, env)


if __name__ == "__main__":
    sys.exit(main())

"""The node runner's command line, ``python -m openbai.runtime.runner --run-dir DIR ...``:
built by the executors that start runners (values as they pass them: a batch script passes
shell words) and read by the runner itself, from the one list of options here."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NamedTuple

RUNNER_MODULE = "openbai.runtime.runner"


class RunnerArgs(NamedTuple):
    """One runner's options; see :func:`parser` for what each means."""

    run_dir: str
    node: str
    node_root: str
    hosts: str | None = None
    node_state: str | None = None
    keep_env: tuple[str, ...] = ()
    remove_node_root: bool = False
    ports_dir: str | None = None

    def argv(self) -> list[str]:
        """The arguments after ``-m openbai.runtime.runner``."""
        args = ["--run-dir", self.run_dir, "--node", self.node]
        if self.hosts is not None:
            args += ["--hosts", self.hosts]
        args += ["--node-root", self.node_root]
        if self.node_state is not None:
            args += ["--node-state", self.node_state]
        for prefix in self.keep_env:
            args += ["--keep-env", prefix]
        if self.remove_node_root:
            args.append("--remove-node-root")
        if self.ports_dir is not None:
            args += ["--ports-dir", self.ports_dir]
        return args


def parser() -> argparse.ArgumentParser:
    """What the runner accepts: the options :meth:`RunnerArgs.argv` writes."""
    p = argparse.ArgumentParser(prog="openbai-runner")
    p.add_argument("--run-dir", type=Path, required=True, help="the job's run directory")
    p.add_argument("--node", type=int, required=True, help="this node's index in the job")
    p.add_argument("--node-root", type=Path, required=True, help="this node's root (mounts, temp)")
    p.add_argument("--node-state", type=Path, default=None, help="state that outlives the job")
    p.add_argument("--hosts", default=None, help="the allocated hosts, in node order (a,b,...)")
    p.add_argument(
        "--keep-env",
        action="append",
        default=[],
        metavar="PREFIX",
        help="scheduler variables the job's processes keep",
    )
    p.add_argument("--remove-node-root", action="store_true", help="remove the root at the end")
    p.add_argument(
        "--ports-dir",
        type=Path,
        default=None,
        help="where the host's runners hold their blocks of ports (one for all its jobs)",
    )
    return p

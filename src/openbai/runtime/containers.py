"""Running a job inside its ``containerSettings`` image with podman or docker.

Batch AI started one container per node, ran job preparation and the toolkit inside it with
``docker exec`` (so preparation's changes, such as ``~/.bashrc`` edits, are seen by the job),
and mounted the node's job tree at the same paths. The command lines are built by pure
functions so they can be checked without a runtime.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from openbai.runtime.plan import ContainerSpec

RUNTIMES = ("docker", "podman")


def image_name(spec: ContainerSpec) -> str:
    if spec.server_url and not spec.image.startswith(spec.server_url):
        return f"{spec.server_url.rstrip('/')}/{spec.image}"
    return spec.image


def run_argv(
    runtime: str, spec: ContainerSpec, name: str, binds: Sequence[Path], env: Mapping[str, str]
) -> list[str]:
    """The command that starts the job's long-lived container on a node."""
    argv = [runtime, "run", "-d", "--rm", "--name", name, "--network", "host"]
    if spec.shm_size:
        argv += ["--shm-size", spec.shm_size]
    for path in dict.fromkeys(str(b) for b in binds):
        argv += ["-v", f"{path}:{path}:rslave"]
    for key in sorted(env):
        argv += ["-e", key]
    return [*argv, "--entrypoint", "sleep", image_name(spec), "infinity"]


def exec_argv(
    runtime: str, name: str, cwd: Path, env: Mapping[str, str], command: str
) -> list[str]:
    """The command that runs ``command`` with bash inside the job's container."""
    argv = [runtime, "exec", "-i", "-w", str(cwd)]
    for key in sorted(env):
        argv += ["-e", key]
    return [*argv, name, "bash", "-c", command]


@dataclass
class Container:
    runtime: str
    name: str

    def stop(self) -> None:
        subprocess.run([self.runtime, "rm", "-f", self.name], capture_output=True)


def find_runtime(configured: str | None) -> str | None:
    """The configured runtime if it is installed; none when nothing is configured."""
    if configured and configured in RUNTIMES and shutil.which(configured):
        return configured
    return None


def start(
    runtime: str, spec: ContainerSpec, name: str, binds: Sequence[Path], env: Mapping[str, str]
) -> Container:
    argv = run_argv(runtime, spec, name, binds, env)
    done = subprocess.run(argv, env=dict(env), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"{shlex.join(argv[:2])} {spec.image} failed ({done.returncode}): {done.stderr.strip()}"
        )
    return Container(runtime, name)

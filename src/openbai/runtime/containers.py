"""Command lines for running a job inside its ``containerSettings`` image (podman or docker).

Batch AI started one container per node, ran job preparation and the toolkit inside it with
``docker exec`` (so preparation's changes, such as ``~/.bashrc`` edits, are seen by the job),
and mounted the node's job tree at the same paths. Both runtimes take the same arguments here
except for registry logins (podman: ``--authfile FILE``; docker: ``--config DIR``).

Everything in this module is a pure function of its arguments, so the command lines can be
checked without a runtime. No secret is ever put on a command line: variables are passed as
``-e NAME`` (the runtime takes the value from its own environment) and a registry password is
written to ``login --password-stdin``. ``job_container.py`` runs these commands.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

from openbai.plan.job_plan import ContainerSpec

#: looked for in this order when none is configured
RUNTIMES = ("podman", "docker")
#: ``OPENBAI_CONTAINER_RUNTIME=none``: this installation runs no image (host runs only)
NO_RUNTIME = "none"
#: the first line the container's first process prints once it runs
READY = "openbai-container-ready"
#: the container's first process: say it runs, then live until the node runner closes its
#: stdin (it ends the job, or dies): then the container stops, and is removed (``--rm``)
KEEPER = f"echo {READY}; read -r _; exit 0"
#: host directories that are never bound into a container themselves (the image has its own)
SYSTEM_DIRS = frozenset(
    ["/", "/bin", "/boot", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media"]
    + ["/mnt", "/opt", "/root", "/run", "/sbin", "/srv", "/tmp", "/usr", "/usr/bin", "/usr/lib"]
    + ["/usr/local", "/usr/local/bin", "/usr/local/lib", "/usr/sbin", "/usr/share", "/var"]
    + ["/var/lib", "/var/tmp"]
)
#: nor anything under these
KERNEL_DIRS = (PurePosixPath("/dev"), PurePosixPath("/proc"), PurePosixPath("/sys"))
DOCKER_HUB = "docker.io"


def find_runtime(configured: str | None) -> str | None:
    """The configured runtime if it is installed, else the first of RUNTIMES installed."""
    if configured == NO_RUNTIME:
        return None
    if configured:
        return configured if configured in RUNTIMES and shutil.which(configured) else None
    return next((r for r in RUNTIMES if shutil.which(r)), None)


def gpu_options(runtime: str, gpus: Sequence[int]) -> list[str]:
    """Hand the node's GPUs (host indices) to the container: CDI devices for podman (the
    NVIDIA Container Toolkit's ``nvidia-ctk cdi generate``), ``--gpus`` for docker."""
    if not gpus:
        return []
    if runtime == "docker":
        return ["--gpus", '"device=' + ",".join(str(g) for g in gpus) + '"']
    return [arg for g in gpus for arg in ("--device", f"nvidia.com/gpu={g}")]


def registry_host(spec: ContainerSpec) -> str:
    """The registry to log in to: ``serverUrl`` without a scheme, else Docker Hub."""
    url = spec.server_url or ""
    for scheme in ("https://", "http://"):
        url = url.removeprefix(scheme)
    return url.strip("/") or DOCKER_HUB


def image_name(spec: ContainerSpec) -> str:
    """The image to run: with a custom ``serverUrl``, prefixed by it unless already there."""
    if not spec.server_url:
        return spec.image
    host = registry_host(spec)
    return spec.image if spec.image.startswith(f"{host}/") else f"{host}/{spec.image}"


def bind_paths(paths: Iterable[Path]) -> list[Path]:
    """The directories to bind, each once and none inside another; never a system directory
    itself (a job tree below one is fine) nor anything of the kernel's."""
    candidates = sorted({PurePosixPath(p) for p in paths if Path(p).is_absolute()}, key=_depth)
    chosen: list[PurePosixPath] = []
    for path in candidates:
        if str(path) in SYSTEM_DIRS or any(k == path or k in path.parents for k in KERNEL_DIRS):
            continue
        if not any(c == path or c in path.parents for c in chosen):
            chosen.append(path)
    return [Path(p) for p in chosen]


def _depth(path: PurePosixPath) -> tuple[int, str]:
    return (len(path.parts), str(path))


def auth_options(runtime: str, auth_dir: Path | None) -> tuple[list[str], list[str]]:
    """(global options, subcommand options) that make pull/login use a per-job login file."""
    if auth_dir is None:
        return [], []
    if runtime == "docker":
        return ["--config", str(auth_dir)], []
    return [], ["--authfile", str(auth_dir / "auth.json")]


def login_argv(runtime: str, spec: ContainerSpec, auth_dir: Path) -> list[str]:
    """Log in to the image's registry; the password comes on standard input."""
    glob, sub = auth_options(runtime, auth_dir)
    user = spec.username or ""
    return [
        runtime,
        *glob,
        "login",
        *sub,
        "--username",
        user,
        "--password-stdin",
        registry_host(spec),
    ]


def image_exists_argv(runtime: str, image: str) -> list[str]:
    if runtime == "docker":
        return ["docker", "image", "inspect", "--format", "{{.Id}}", image]
    return [runtime, "image", "exists", image]


def pull_argv(runtime: str, image: str, auth_dir: Path | None) -> list[str]:
    glob, sub = auth_options(runtime, auth_dir)
    return [runtime, *glob, "pull", *sub, image]


def run_argv(
    runtime: str,
    spec: ContainerSpec,
    name: str,
    binds: Iterable[Path],
    gpus: Sequence[int] = (),
) -> list[str]:
    """Start the job's container on a node, attached: it lives while its stdin is open.

    The host's network and host name, and the job tree at the same paths, make paths, host
    names and ports inside equal to the host's (MPI host files, TensorFlow's cluster spec).
    """
    argv = [runtime, "run", "-i", "--rm", "--name", name, "--network", "host", "--uts", "host"]
    if spec.shm_size:
        argv += ["--shm-size", spec.shm_size]
    argv += gpu_options(runtime, gpus)
    for path in bind_paths(binds):
        argv += ["-v", f"{path}:{path}:rslave"]
    return [*argv, "--entrypoint", "sh", image_name(spec), "-c", KEEPER]


def task_script(command: str, stdout: Path, stderr: Path) -> str:
    """What bash runs inside the container for one task of the job.

    Its output goes straight to the stdouterr files (bound at the same paths), not through
    the runtime's client. ``~/.bashrc`` is read first: job preparation's edits to it reach the
    job (the recipes rely on this), as in a login through SSH into a Batch AI container.
    """
    return (
        f"exec >>{shlex.quote(str(stdout))} 2>>{shlex.quote(str(stderr))}\n"
        "if [ -f ~/.bashrc ]; then . ~/.bashrc; fi\n"
        f"{command}"
    )


def exec_argv(
    runtime: str,
    name: str,
    cwd: Path,
    env_names: Iterable[str],
    command: str,
    stdout: Path,
    stderr: Path,
) -> list[str]:
    """Run one task with bash inside the job's container; ``env_names`` come from the client's
    environment (``-e NAME``), so no value is on the command line."""
    argv = [runtime, "exec", "-i", "-w", str(cwd)]
    for key in sorted(set(env_names)):
        argv += ["-e", key]
    return [*argv, name, "bash", "-c", task_script(command, stdout, stderr)]


def signal_argv(runtime: str, name: str, signal_name: str) -> list[str]:
    """Signal every process of the container but its first (the keeper) and the caller."""
    return [runtime, "exec", name, "sh", "-c", f"kill -{signal_name} -1 2>/dev/null; exit 0"]


def has_command_argv(runtime: str, name: str, command: str) -> list[str]:
    return [runtime, "exec", name, "sh", "-c", f"command -v {shlex.quote(command)} >/dev/null"]


def remove_argv(runtime: str, name: str) -> list[str]:
    return [runtime, "rm", "-f", "-t", "0", name]

"""Command lines for running a job inside its ``containerSettings`` image (podman, docker or
apptainer).

Batch AI started one container per node, ran job preparation and the toolkit inside it with
``docker exec`` (so preparation's changes, such as ``~/.bashrc`` edits, are seen by the job),
and mounted the node's job tree at the same paths. podman and docker take the same arguments
here except for registry logins (podman: ``--authfile FILE``; docker: ``--config DIR``);
apptainer has no attached container to ``exec`` into, so its container is an *instance*
(``instance start`` / ``exec instance://NAME`` / ``instance stop``), its volumes ``--bind``
and its GPUs ``--nv``.

A container is sealed off as a host task's sandbox is (runtime/sandbox.py), by the runtime's
own means: under root its processes are the job user on the host, with no capabilities and no
new privileges, in their own PID namespace, within the node slot's CPU, memory and process
limits (``--cpus``, ``--memory``, ``--pids-limit``), seeing of the host only the directories
bound in. podman makes the container's root that user (a user namespace mapping only it:
``--uidmap 0:UID:1``), so job preparation may ``apt-get install`` as Batch AI's root could,
while on the host it owns no more than a host task does; docker and apptainer run the
processes as the job user itself.

Everything in this module is a pure function of its arguments, so the command lines can be
checked without a runtime. No secret is ever put on a command line: variables are passed as
``-e NAME`` (the runtime takes the value from its own environment) and a registry password is
written to ``login --password-stdin``. ``job_container.py`` runs these commands.
"""

from __future__ import annotations

import re
import shlex
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from openbai.plan.job_plan import ContainerSpec, NodeLimits

#: looked for in this order when none is configured
RUNTIMES = ("podman", "docker", "apptainer")
APPTAINER = "apptainer"
#: ``OPENBAI_CONTAINER_RUNTIME=none``: this installation runs no image (host runs only)
NO_RUNTIME = "none"
#: the first line the container's first process prints once it runs
READY = "openbai-container-ready"
#: commands whose presence the keeper reports with its first line (the toolkits' ``python``,
#: ``mpirun``, the MPI agent's ``python3``): no ``exec`` round trip to ask for them
PROBED = ("python", "python3", "mpirun")
#: the container's first process, its *keeper*: it says it runs (and which of PROBED the
#: image has), then starts each task the node runner writes to its standard input (one line:
#: see :func:`task_request`) and lives until the runner closes that input (it ends the job, or
#: dies): then it kills every process of the container, which stops and is removed (``--rm``).
#: A task so started costs no ``exec`` of the runtime (most of what an image job cost over a
#: bare ``run``). It is started by a pipeline stage, not ``&`` (which would start it with
#: SIGINT and SIGQUIT ignored); the shells around it outlive SIGTERM (``trap :``, which the
#: task does not inherit), so that a stop's grace lasts while the task does. Its exit code is
#: written to the FIFO the request names, which :func:`wait_task_argv` reads on the host.
#: ``kill -KILL -1`` only where it is the PID namespace's first process (``$$`` is 1: a
#: container's), never where it would reach every process of a host.
KEEPER = (
    f'found=; for c in {" ".join(PROBED)}; do command -v $c >/dev/null && found="$found $c"; done; '
    "bash=$(command -v bash || echo bash); nl='\n'; exec 4<&0; "
    'run() { trap : TERM; exec 3>"$1" || exit 0; script=$2 out=$4 err=$5; cd "$3" 2>>"$err" && '
    'shift 5 && for kv; do export "$kv"; done && '
    '"$bash" -c "$script" >>"$out" 2>>"$err" 3>&-; echo $? >&3; }; '
    "serve() { trap : TERM; IFS= read -r line <&4 || { [ $$ = 1 ] && kill -KILL -1 2>/dev/null; exit 0; }; "
    'eval "set -- $line"; run "$@" </dev/null >/dev/null 4<&- | serve; }; '
    f'echo "{READY}$found"; serve; exit 0'
)
#: run first by the keeper of a container whose root is the job user: apt drops privileges
#: to its ``_apt`` user for downloads, which the user namespace (root alone) cannot switch to
APT_AS_ROOT = (
    "[ -d /etc/apt/apt.conf.d ] && echo 'APT::Sandbox::User \"root\";' "
    ">/etc/apt/apt.conf.d/00openbai-sandbox 2>/dev/null; "
)
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


@dataclass(frozen=True)
class JobUser:
    """The unprivileged host user a sealed container's processes are (the host sandbox's)."""

    uid: int
    gid: int
    name: str
    #: ``$HOME`` inside (the job's temp directory: ``~/.bashrc`` edits of job preparation
    #: reach the job, as in Batch AI's containers)
    home: Path


@dataclass(frozen=True)
class Seal:
    """How a container is sealed off: ``user`` None keeps the image's (not under root)."""

    user: JobUser | None
    limits: NodeLimits
    #: no capabilities, no new privileges (False: a --no-sandbox cluster's container)
    confined: bool = True


def find_runtime(configured: str | None) -> str | None:
    """The configured runtime if it is installed, else the first of RUNTIMES installed."""
    if configured == NO_RUNTIME:
        return None
    if configured:
        return configured if configured in RUNTIMES and shutil.which(configured) else None
    return next((r for r in RUNTIMES if shutil.which(r)), None)


def gpu_options(runtime: str, gpus: Sequence[int]) -> list[str]:
    """Hand the node's GPUs (host indices) to the container: CDI devices for podman (the
    NVIDIA Container Toolkit's ``nvidia-ctk cdi generate``), ``--gpus`` for docker, ``--nv``
    for apptainer (which binds the driver and every GPU: ``CUDA_VISIBLE_DEVICES`` picks)."""
    if runtime == APPTAINER:
        return ["--nv"] if gpus else []
    # NVIDIA's runtime hook (docker's default runtime, podman's legacy OCI hook) hands the
    # container the GPUs its NVIDIA_VISIBLE_DEVICES names, which an image may set to "all":
    # none by it, those given here by --gpus (docker sets the variable) or CDI
    void = ["--env", "NVIDIA_VISIBLE_DEVICES=void"]
    if runtime == "docker":
        return ["--gpus", '"device=' + ",".join(str(g) for g in gpus) + '"'] if gpus else void
    return [*void, *(arg for g in gpus for arg in ("--device", f"nvidia.com/gpu={g}"))]


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


_IMAGE_ID = re.compile(r"(sha256:)?[0-9a-f]{12,64}")


def _untagged(image: str) -> str:
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


def qualified(image: str) -> bool:
    """Whether the name says its registry (else the runtime may find it under any registry
    it searches, among the images it has first)."""
    first, _, rest = image.partition("/")
    return bool(rest) and ("." in first or ":" in first or first == "localhost")


def repository(image: str) -> str:
    """The repository an image name names, however it is spelt: without its tag or digest,
    with Docker Hub's defaults (``ubuntu`` is ``docker.io/library/ubuntu``), its registry's
    host in lower case."""
    name = _untagged(image)
    if qualified(name):
        host, _, path = name.partition("/")
        host = host.lower()
        if host in (DOCKER_HUB, "index.docker.io", "registry-1.docker.io"):
            return f"{DOCKER_HUB}/{path if '/' in path else 'library/' + path}"
        return f"{host}/{path}"
    return f"{DOCKER_HUB}/{name if '/' in name else 'library/' + name}"


def may_be(image: str, repo: str) -> bool:
    """Whether the runtime may take ``image`` for an image of repository ``repo`` (a name
    that does not say its registry matches the repository's path under any registry)."""
    if qualified(image):
        return repository(image) == repo
    name = _untagged(image)
    return repo == repository(image) or repo.endswith("/" + name)


def is_image_id(image: str) -> bool:
    """Whether ``image`` names an image by its id, which says nothing of its repository."""
    return _IMAGE_ID.fullmatch(image) is not None


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


def bound(binds: Iterable[Path], read_only: Iterable[Path] = ()) -> list[tuple[Path, bool]]:
    """Each directory to bind (:func:`bind_paths`) and whether it is bound read-only: a volume
    mounted read-only is, as in the host sandbox, also where it lies inside a writable one
    (a copy below the mount root: bound over it) or where a job before made it the job
    user's (a read-write mount of it)."""
    ro = bind_paths(read_only)
    rw = bind_paths(p for p in binds if Path(p) not in ro)
    return [(p, False) for p in rw] + [(p, True) for p in ro]


def _bind_option(runtime: str, path: Path, read_only: bool) -> list[str]:
    if runtime == APPTAINER:
        if "," in str(path) or ":" in str(path):
            # apptainer splits --bind at commas and colons (and has no escape for them): a
            # volume's folder named so would bind what its parts name, the host's / say
            raise ValueError(f"apptainer cannot bind {path}: a ',' or ':' in its path")
        return ["--bind", f"{path}:{path}" + (":ro" if read_only else "")]
    return ["-v", f"{path}:{path}:" + ("ro,rslave" if read_only else "rslave")]


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


def image_exists_argv(runtime: str, image: str) -> list[str] | None:
    """How to ask whether the image is on this node; None: the runtime keeps its own cache
    (apptainer converts and caches a ``docker://`` image when the instance starts)."""
    if runtime == APPTAINER:
        return None
    if runtime == "docker":
        return ["docker", "image", "inspect", "--format", "{{.Id}}", image]
    return [runtime, "image", "exists", image]


def pull_argv(runtime: str, image: str, auth_dir: Path | None) -> list[str]:
    glob, sub = auth_options(runtime, auth_dir)
    return [runtime, *glob, "pull", *sub, image]


def seal_options(runtime: str, seal: Seal | None) -> list[str]:
    """The runtime's options for the job user and the node slot's limits.

    A container has its own PID namespace by default (podman, docker: ``--pid`` unset;
    apptainer: ``--pid``) and its first process ends it and all in it."""
    if seal is None:
        return []
    args: list[str] = []
    # apptainer always sets no-new-privileges and gives the container no capabilities
    if seal.confined and runtime != APPTAINER:
        args += ["--security-opt", "no-new-privileges"]
    if seal.user is not None:
        u = seal.user
        if runtime == APPTAINER:
            args += ["--security", f"uid:{u.uid},gid:{u.gid}"]
        elif runtime == "podman":
            # the container's root is the job user, and no other host id is in its user
            # namespace: it owns the image's files (apt-get, pip install to /usr work), the
            # host's are nobody's to it. A single id keeps the map contiguous: podman 4.3
            # fails to mount an image under a split map (0:UID:1 plus a subordinate range).
            # Its sysfs cannot be mounted for the host's network namespace: the host's is
            # bound read-only (a host task sees it too). Capabilities would only reach its
            # own namespace's objects; none are kept anyway.
            args += ["--cap-drop", "all", "--uidmap", f"0:{u.uid}:1", "--gidmap", f"0:{u.gid}:1"]
            args += ["-v", "/sys:/sys:ro"]
        else:
            # not for a runner that is not root: its (rootless) container's root is that
            # user, whose capabilities in the container job preparations need (apt-get)
            args += ["--cap-drop", "all", "--user", f"{u.uid}:{u.gid}"]
    lim = seal.limits
    if lim.cpus:
        args += ["--cpus", f"{lim.cpus:g}"]
    if lim.memory_bytes:  # and no swap past it, as the host path's control group
        args += ["--memory", str(lim.memory_bytes), "--memory-swap", str(lim.memory_bytes)]
    if lim.processes:
        args += ["--pids-limit", str(lim.processes)]
    return args


def run_argv(
    runtime: str,
    spec: ContainerSpec,
    name: str,
    binds: Iterable[Path],
    gpus: Sequence[int] = (),
    *,
    seal: Seal | None = None,
    cidfile: Path | None = None,
    read_only: Iterable[Path] = (),
) -> list[str]:
    """Start the job's container on a node, attached: it lives while its stdin is open.

    The host's network and host name, and the job tree at the same paths, make paths, host
    names and ports inside equal to the host's (MPI host files, TensorFlow's cluster spec).
    The image is never pulled here (``--pull never``): a missing one is pulled by
    :func:`pull_argv` after a login, with its progress in the execution log. ``cidfile``
    receives the container's id (to find its control group).
    """
    if runtime == APPTAINER:
        return apptainer_start_argv(spec, name, binds, gpus, seal=seal, read_only=read_only)
    argv = [runtime, "run", "-i", "--rm", "--name", name, "--network", "host", "--uts", "host"]
    argv += ["--pull", "never"]
    if runtime == "podman":
        # podman hands the client's proxy variables (credentials included) to the container:
        # the runner's, which a job keeps nothing of
        argv.append("--http-proxy=false")
    if cidfile is not None:
        argv += ["--cidfile", str(cidfile)]
    if spec.shm_size:
        argv += ["--shm-size", spec.shm_size]
    argv += seal_options(runtime, seal)
    argv += gpu_options(runtime, gpus)
    for path, ro in bound(binds, read_only):
        argv += _bind_option(runtime, path, ro)
    return [*argv, "--entrypoint", "sh", image_name(spec), "-c", keeper(runtime, seal)]


def root_is_job_user(runtime: str, seal: Seal | None) -> bool:
    """Whether the container's root is the job user on the host (podman under root)."""
    return runtime == "podman" and seal is not None and seal.user is not None


def keeper(runtime: str, seal: Seal | None) -> str:
    return (APT_AS_ROOT if root_is_job_user(runtime, seal) else "") + KEEPER


def apptainer_image(spec: ContainerSpec) -> str:
    """What apptainer runs: an image file or URI as given, a registry image as ``docker://``."""
    image = image_name(spec)
    if image.startswith(("/", "docker://", "oras://", "library://")) or image.endswith(".sif"):
        return image
    return f"docker://{image}"


def apptainer_start_argv(
    spec: ContainerSpec,
    name: str,
    binds: Iterable[Path],
    gpus: Sequence[int] = (),
    *,
    seal: Seal | None = None,
    read_only: Iterable[Path] = (),
) -> list[str]:
    """Start the job's apptainer instance: nothing of the host but what is bound
    (``--contain``: no home, /tmp or /dev of the host), its own PID namespace, a writable
    overlay kept while the instance lives (job preparation's changes reach the job)."""
    argv = [APPTAINER, "instance", "start", "--contain", "--pid", "--writable-tmpfs"]
    argv += seal_options(APPTAINER, seal)
    argv += gpu_options(APPTAINER, gpus)
    for path, ro in bound(binds, read_only):
        argv += _bind_option(APPTAINER, path, ro)
    return [*argv, apptainer_image(spec), name]


def _apptainer_exec(seal: Seal | None) -> list[str]:
    argv = [APPTAINER, "exec"]
    if seal is not None and seal.user is not None:
        argv += ["--security", f"uid:{seal.user.uid},gid:{seal.user.gid}"]
    return argv


def task_script(command: str, stdout: Path, stderr: Path) -> str:
    """What bash runs for one task of the job in an apptainer instance (``exec``).

    Its output goes straight to the stdouterr files (bound at the same paths), not through
    the runtime's client."""
    return f"exec >>{shlex.quote(str(stdout))} 2>>{shlex.quote(str(stderr))}\n{command}"


#: a task's exit code when its container ended before it did (as if killed by SIGKILL)
LOST_TASK_EXIT = 137
#: what a name must look like to be passed to a task by the keeper (``export``); job and
#: toolkit variable names are checked to be so at submit
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _sh_word(value: str) -> str:
    """``value`` as one shell word on one line: the keeper ``eval``s each request, read with
    ``read -r``, where ``$nl`` is a newline."""
    return "'" + value.replace("'", "'\\''").replace("\n", "'\"$nl\"'") + "'"


def task_request(
    fifo: Path, cwd: Path, env: Mapping[str, str], command: str, stdout: Path, stderr: Path
) -> bytes:
    """The line that asks the keeper to start a task: bash runs ``command`` in ``cwd`` with
    ``env`` added, its output appended to the stdouterr files, its exit code written to
    ``fifo``. The values travel on the keeper's standard input, never on a command line."""
    bad = [name for name in env if not _ENV_NAME.fullmatch(name)]
    if bad:
        raise ValueError(f"not a variable name a task can be given: {bad[0]!r}")
    words = [str(fifo), command, str(cwd), str(stdout), str(stderr)]
    words += [f"{name}={value}" for name, value in sorted(env.items())]
    return (" ".join(_sh_word(w) for w in words) + "\n").encode()


#: the whole environment of a task's host process that waits for its exit code (root's,
#: outside any sandbox): nothing of the job's, whose PATH would name its own ``head``
WAITER_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
#: what configures apptainer's client, which runs as root: a job's variables of these names
#: do not reach it (a task's others do: the client hands them to the task)
_CLIENT_SETTINGS = ("APPTAINER", "SINGULARITY")


def client_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment of a runtime's client that starts a task (``exec``): the task's,
    less what would configure the client itself."""
    return {k: v for k, v in env.items() if not k.startswith(_CLIENT_SETTINGS)}


def wait_task_argv(fifo: Path) -> list[str]:
    """The host's process for a task the keeper started: it ends when the task does, with
    its exit code (:data:`LOST_TASK_EXIT` if the container ended first: the keeper's side of
    the FIFO closes then). At most 4 bytes are read: the job cannot make it hold more."""
    script = (
        'exec 3<"$1" || exit 1; code=$(head -c 4 <&3); '
        f'case $code in ""|*[!0-9]*) exit {LOST_TASK_EXIT};; esac; exit "$code"'
    )
    return ["/bin/sh", "-c", script, "sh", str(fifo)]


def exec_argv(
    runtime: str,
    name: str,
    cwd: Path,
    env_names: Iterable[str],
    command: str,
    stdout: Path,
    stderr: Path,
    *,
    seal: Seal | None = None,
) -> list[str]:
    """Run one task with bash inside the job's container; ``env_names`` come from the client's
    environment (``-e NAME``), so no value is on the command line (apptainer passes the
    client's whole environment itself)."""
    script = task_script(command, stdout, stderr)
    if runtime == APPTAINER:
        where = ["--pwd", str(cwd), f"instance://{name}"]
        return [*_apptainer_exec(seal), *where, "bash", "-c", script]
    argv = [runtime, "exec", "-i", "-w", str(cwd)]
    for key in sorted(set(env_names)):
        argv += ["-e", key]
    return [*argv, name, "bash", "-c", script]


def _in_container(runtime: str, name: str, seal: Seal | None, script: str) -> list[str]:
    if runtime == APPTAINER:
        return [*_apptainer_exec(seal), f"instance://{name}", "sh", "-c", script]
    return [runtime, "exec", name, "sh", "-c", script]


def signal_argv(runtime: str, name: str, signal_name: str, seal: Seal | None = None) -> list[str]:
    """Signal every process of the container but its first (the keeper) and the caller."""
    return _in_container(runtime, name, seal, f"kill -{signal_name} -1 2>/dev/null; exit 0")


def has_command_argv(runtime: str, name: str, command: str, seal: Seal | None = None) -> list[str]:
    script = f"command -v {shlex.quote(command)} >/dev/null"
    return _in_container(runtime, name, seal, script)


def pid_argv(runtime: str, name: str) -> list[str]:
    """Ask for the host's process id of the container's first process (runtime/bind_check.py
    looks at the container's files through it): podman's and docker's ``State.Pid``, the
    instance's process in ``apptainer instance list --json``."""
    if runtime == APPTAINER:
        return [APPTAINER, "instance", "list", "--json", name]
    return [runtime, "inspect", "--type", "container", "--format", "{{.State.Pid}}", name]


def remove_argv(runtime: str, name: str) -> list[str]:
    if runtime == APPTAINER:
        return [APPTAINER, "instance", "stop", "--force", name]
    return [runtime, "rm", "-f", "-t", "0", name]

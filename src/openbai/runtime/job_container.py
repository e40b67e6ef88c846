"""A job's container on one node: get its image, start it, signal it, remove it.

The container is started attached (``run -i --rm``) with its first process waiting on standard
input, which only the node runner holds: when the runner closes it (the job ended) or dies
(killed, node lost), the first process ends, and with it every process of the container, which
is then removed. No container outlives its job, whatever happens to the runner.

An apptainer instance has no attached client: it is stopped (``instance stop``) when the job
ends; its processes are the slot's to kill if the runner is lost.

A job costs as few runtime calls as can be: the container is started without looking for its
image first (``--pull never``; only when that fails for want of the image is it pulled and
started again; an image that must be pulled first, :func:`must_pull`, is pulled before), its
first line says which of the toolkits' commands the image has, its first process starts the
tasks (no ``exec`` per task: a line on its standard input, the exit code back through a FIFO
to a host process that stands for the task), and its ``--rm`` removes it (no ``rm`` after a
clean end).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import select
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import PIPE, Popen

from openbai.files import write_private
from openbai.plan.job_plan import ContainerSpec
from openbai.runtime import containers
from openbai.runtime.cgroups import groups_of

#: the folder of a node's state directory naming the images pulled there with a registry login
LOGIN_PULLS = "images-pulled-with-login"
#: how long a started container may take to run its first process
START_TIMEOUT_SECONDS = 120.0
#: how long the runtime may take to remove a container after its first process ended
REMOVE_TIMEOUT_SECONDS = 15.0


class ContainerError(Exception):
    def __init__(self, message: str, info: str = ""):
        super().__init__(message)
        self.message = message
        self.info = info


@dataclass
class JobContainer:
    runtime: str
    name: str
    image: str
    #: the attached ``run`` client; the container lives while its stdin is open (None: an
    #: apptainer instance, which lives until it is stopped)
    client: Popen[bytes] | None
    seal: containers.Seal | None = None
    #: the commands of ``containers.PROBED`` the image had when it started
    found: frozenset[str] = frozenset()
    #: the container's control groups (its runtime's), where they were found
    groups: list[Path] = field(default_factory=list)

    #: where the FIFOs that carry the exit codes of the tasks the keeper starts live (bound
    #: in; None: each task is an ``exec``, as in an apptainer instance)
    control: Path | None = None
    #: the FIFOs of tasks started, until the container is removed
    fifos: list[Path] = field(default_factory=list)

    def task_argv(
        self,
        cwd: Path,
        env: Mapping[str, str],
        command: str,
        stdout: Path,
        stderr: Path,
        *,
        held: Mapping[str, str],
    ) -> tuple[list[str], dict[str, str]]:
        """Start a task in the container with ``env`` added to the container's variables;
        the command line of the host process that stands for it (it ends when the task does,
        with its exit code), and that process's environment (it runs as root, outside any
        sandbox): a runtime client's (``exec``) is the task's ``held`` environment, which it
        hands to the task, less what would configure the client; the process that waits for
        a task the keeper started gets nothing of the job's. Its output files exist and are
        the job user's already (the task opens them itself, inside, as that user: tasks.py
        makes them, following no link)."""
        user = self.seal.user if self.seal is not None else None
        if self.control is None or self.client is None or self.client.stdin is None:
            argv = containers.exec_argv(
                self.runtime, self.name, cwd, list(env), command, stdout, stderr, seal=self.seal
            )
            return argv, containers.client_env(held)
        # an unguessable name in a directory no one but the runner lists: no other user
        # of the host can write a task's exit code
        fifo = self.control / f"task-{len(self.fifos)}-{secrets.token_hex(8)}"
        os.mkfifo(fifo, 0o600)
        if user is not None:
            os.chown(fifo, user.uid, user.gid)
        else:  # the image's user, whoever it is, writes it
            fifo.chmod(0o666)
        self.fifos.append(fifo)
        request = containers.task_request(fifo, cwd, env, command, stdout, stderr)
        try:
            self.client.stdin.write(request)
            self.client.stdin.flush()
        except OSError:
            pass  # the container is gone: check() ends the task's host process
        return containers.wait_task_argv(fifo), dict(containers.WAITER_ENV)

    def check(self) -> None:
        """Once the container has ended, end the host processes of the tasks it ran: each
        reads its FIFO, whose other side no one holds any more (an end of file: the task's
        exit code is ``containers.LOST_TASK_EXIT``)."""
        if self.client is None or self.client.poll() is None:
            return
        for fifo in self.fifos:
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:  # no reader (any more, or yet: the next check) or removed
                pass

    def has_command(self, command: str) -> bool:
        if command in self.found:  # job preparation may install it; it does not remove it
            return True
        argv = containers.has_command_argv(self.runtime, self.name, command, self.seal)
        return subprocess.run(argv, capture_output=True, timeout=60).returncode == 0

    def signal_all(self, signal_name: str) -> None:
        """Send a signal to every process started in the container."""
        argv = containers.signal_argv(self.runtime, self.name, signal_name, self.seal)
        subprocess.run(argv, capture_output=True, timeout=60)

    def stop_processes(self, clients: Sequence[Popen[bytes]], grace: float) -> None:
        """SIGTERM everything inside; SIGKILL what still runs after ``grace`` seconds.

        ``clients`` are the ``exec`` clients of the tasks: each ends when its task does.
        """
        self.signal_all("TERM")
        deadline = time.monotonic() + grace
        while any(c.poll() is None for c in clients) and time.monotonic() < deadline:
            time.sleep(0.05)
        if any(c.poll() is None for c in clients):
            self.signal_all("KILL")

    def remove(self) -> None:
        """End the container (and every process in it) and wait until it is removed."""
        client = self.client
        if client is None:
            argv = containers.remove_argv(self.runtime, self.name)
            subprocess.run(argv, capture_output=True, timeout=60)
            return
        if client.stdin is not None and not client.stdin.closed:
            try:
                client.stdin.close()
            except OSError:
                pass
        try:
            client.wait(REMOVE_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            client.kill()
            client.wait()
        if client.returncode != 0:  # its --rm may not have run: remove it here
            argv = containers.remove_argv(self.runtime, self.name)
            subprocess.run(argv, capture_output=True, timeout=60)
        if client.stdout is not None:
            client.stdout.close()
        for fifo in self.fifos:
            fifo.unlink(missing_ok=True)
        self.fifos.clear()


def must_pull(runtime: str, spec: ContainerSpec, state: Path) -> bool:
    """Whether the image must be pulled before the container starts, even when it is on the
    node: the job gives registry credentials (they are checked by a login every time, as
    Batch AI's VMs pulled for every job), or the image was pulled here with a login (noted
    in the node's ``state`` directory: one who could not pull it must not run it from the
    node's image store, which every job of the machine shares). apptainer keeps its own
    cache, and pulls nothing with a login (:func:`prepare_image` refuses credentials)."""
    if spec.username and spec.password:
        return True
    if runtime == containers.APPTAINER:
        return False
    noted = _login_pulls(state)
    if containers.is_image_id(spec.image):  # of which repository? one pulled with a login?
        return bool(noted)
    image = containers.image_name(spec)
    return any(containers.may_be(image, repo) for repo in noted)


def prepare_image(
    runtime: str,
    spec: ContainerSpec,
    auth_dir: Path,
    state: Path,
    stop: Callable[[], bool],
    *,
    always: bool = False,
    progress: Callable[[str], None] | None = None,
) -> bool:
    """Make sure the image is on this node: pull it (after a login, when the job gives
    credentials) when it is not, or with ``always`` whether it is or not (with its layers
    here, a pull checks the manifest with the registry: a private image's refusal fails
    the job). An image pulled with a login is first noted in the node's ``state``
    directory (for :func:`must_pull`); wrong credentials fail the job before any pull.

    Returns whether it was pulled. The login file lives in ``auth_dir`` (owner only) and is
    removed once the pull is over.
    """
    image = containers.image_name(spec)
    if runtime == containers.APPTAINER and spec.username:
        raise ContainerError(
            f"apptainer cannot log in to registry {containers.registry_host(spec)} yet: "
            "run this job with podman or docker (--container-runtime)"
        )
    if not always:
        exists = containers.image_exists_argv(runtime, image)
        if exists is None or _run(exists, stop=stop)[0] == 0:
            return False
    auth: Path | None = None
    try:
        if spec.username and spec.password:
            auth = auth_dir
            auth.mkdir(mode=0o700, parents=True, exist_ok=True)
            code, output = _run(
                containers.login_argv(runtime, spec, auth), input=spec.password, stop=stop
            )
            if code != 0:
                raise ContainerError(
                    f"could not log in to registry {containers.registry_host(spec)} as {spec.username}",
                    _tail(output),
                )
            note_login_pull(state, spec)  # before the pull: no image of a login goes unnoted
        code, output = _run(containers.pull_argv(runtime, image, auth), stop=stop, lines=progress)
        if code != 0:
            missing = "" if always else " is not on this node and"
            raise ContainerError(f"image {image}{missing} could not be pulled", _tail(output))
        return True
    finally:
        if auth is not None:
            shutil.rmtree(auth, ignore_errors=True)


def _login_pull(state: Path, spec: ContainerSpec) -> Path:
    """The note that an image of the repository was pulled with a login, named by a hash of
    the repository (any tag or digest of it, however spelt, is then pulled first)."""
    repository = containers.repository(containers.image_name(spec))
    return state / LOGIN_PULLS / hashlib.sha256(repository.encode()).hexdigest()


def _login_pulls(state: Path) -> list[str]:
    """The repositories noted as pulled with a login."""
    try:
        notes = list((state / LOGIN_PULLS).iterdir())
    except FileNotFoundError:
        return []
    return [note.read_text().strip() for note in notes]


def note_login_pull(state: Path, spec: ContainerSpec) -> None:
    """Note in the node's ``state`` that the image's repository was pulled with a login."""
    note = _login_pull(state, spec)
    try:
        note.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_private(note, containers.repository(containers.image_name(spec)) + "\n")
    except OSError as exc:
        raise ContainerError(
            f"could not note in {note.parent} that image {containers.image_name(spec)} is pulled "
            f"with a login: {exc.strerror or exc}"
        ) from exc


def start(
    runtime: str,
    spec: ContainerSpec,
    name: str,
    binds: Sequence[Path],
    log: Path,
    *,
    gpus: Sequence[int] = (),
    seal: containers.Seal | None = None,
    cidfile: Path | None = None,
    control: Path | None = None,
    read_only: Sequence[Path] = (),
) -> JobContainer:
    """Start the job's container with the node's ``gpus``, sealed by ``seal``; its runtime's
    messages go to ``log``. The image must be on the node (:func:`prepare_image`). Its keeper
    starts the tasks, with their exit codes through FIFOs in ``control`` (one of ``binds``;
    None: each task is an ``exec``); ``read_only``: what of them is bound read-only."""
    image = containers.image_name(spec)
    if runtime == containers.APPTAINER:
        return _start_instance(spec, name, binds, log, gpus=gpus, seal=seal, read_only=read_only)
    if cidfile is not None:
        cidfile.unlink(missing_ok=True)  # the runtime refuses to overwrite one
    argv = containers.run_argv(
        runtime, spec, name, binds, gpus, seal=seal, cidfile=cidfile, read_only=read_only
    )
    with open(log, "ab") as err:
        client = Popen(argv, stdin=PIPE, stdout=PIPE, stderr=err, start_new_session=True)
    container = JobContainer(runtime, name, image, client, seal, control=control)
    ready = _wait_ready(client, START_TIMEOUT_SECONDS)
    if ready is None:
        container.remove()
        raise ContainerError(f"the container of image {image} did not start", _tail(_read(log)))
    container.found = frozenset(ready)
    if cidfile is not None:
        container.groups = _groups(cidfile)
    return container


def _start_instance(
    spec: ContainerSpec,
    name: str,
    binds: Sequence[Path],
    log: Path,
    *,
    gpus: Sequence[int],
    seal: containers.Seal | None,
    read_only: Sequence[Path],
) -> JobContainer:
    try:
        argv = containers.run_argv(
            containers.APPTAINER, spec, name, binds, gpus, seal=seal, read_only=read_only
        )
    except ValueError as exc:  # a folder it cannot bind
        raise ContainerError(str(exc)) from exc
    with open(log, "ab") as err:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    image = containers.image_name(spec)
    if done.returncode != 0:
        raise ContainerError(f"the container of image {image} did not start", _tail(_read(log)))
    return JobContainer(containers.APPTAINER, name, image, None, seal)


def _wait_ready(client: Popen[bytes], timeout: float) -> list[str] | None:
    """The commands the keeper found, once it says it runs; None if it never does."""
    assert client.stdout is not None
    fd, seen = client.stdout.fileno(), b""
    deadline = time.monotonic() + timeout
    while b"\n" not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        seen += chunk
    ready, *found = seen.split(b"\n", 1)[0].decode(errors="replace").split()
    return found if ready == containers.READY else None


def _groups(cidfile: Path) -> list[Path]:
    """The control groups of the container whose id ``cidfile`` holds: those of a process
    whose groups are named by that id (its first, which runs now)."""
    try:
        cid = cidfile.read_text().strip()
    except OSError:
        return []
    if not cid:
        return []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cgroup") as f:
                if cid not in f.read():
                    continue
        except OSError:
            continue
        return groups_of(int(entry.name))
    return []


def _run(
    argv: list[str],
    *,
    stop: Callable[[], bool],
    input: str | None = None,
    lines: Callable[[str], None] | None = None,
) -> tuple[int, str]:
    """Run a runtime command to its end (or until ``stop``); its exit code and output.

    With ``lines``, each line of output is handed to it as it comes (a pull's progress)."""
    if lines is not None:
        return _run_lines(argv, stop=stop, lines=lines)
    proc = Popen(argv, stdin=PIPE, stdout=PIPE, stderr=subprocess.STDOUT, text=True)
    pending: str | None = input or ""
    while True:
        try:
            out, _ = proc.communicate(pending, timeout=0.2)
            return proc.returncode, out
        except subprocess.TimeoutExpired:
            pending = None
            if stop():
                proc.kill()
                proc.communicate()
                raise ContainerError(f"stopped while running {argv[0]} {argv[1]}") from None


def _run_lines(
    argv: list[str], *, stop: Callable[[], bool], lines: Callable[[str], None]
) -> tuple[int, str]:
    proc = Popen(argv, stdin=subprocess.DEVNULL, stdout=PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    fd, pending, seen = proc.stdout.fileno(), b"", []
    while True:
        if stop():
            proc.kill()
            proc.wait()
            raise ContainerError(f"stopped while running {argv[0]} {argv[1]}")
        if not select.select([fd], [], [], 0.2)[0]:
            continue
        chunk = os.read(fd, 65536)
        # a terminal-style progress bar redraws with \r: each state is a line of the log
        pending += chunk.replace(b"\r", b"\n")
        *done, pending = pending.split(b"\n")
        for raw in done:
            line = raw.decode(errors="replace").rstrip()
            if line:
                seen.append(line)
                lines(line)
        if not chunk:
            proc.stdout.close()
            return proc.wait(), "\n".join(seen[-50:])


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _tail(text: str, lines: int = 5) -> str:
    return "\n".join(line for line in text.strip().splitlines()[-lines:])

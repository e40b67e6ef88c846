"""A job's container on one node: get its image, start it, signal it, remove it.

The container is started attached (``run -i --rm``) with its first process waiting on standard
input, which only the node runner holds: when the runner closes it (the job ended) or dies
(killed, node lost), the first process ends, and with it every process of the container, which
is then removed. No container outlives its job, whatever happens to the runner.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from subprocess import PIPE, Popen

from openbai.plan.job_plan import ContainerSpec
from openbai.runtime import containers

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
    #: the attached ``run`` client; the container lives while its stdin is open
    client: Popen[bytes]

    def exec_argv(
        self, cwd: Path, env_names: Sequence[str], command: str, stdout: Path, stderr: Path
    ) -> list[str]:
        return containers.exec_argv(
            self.runtime, self.name, cwd, env_names, command, stdout, stderr
        )

    def has_command(self, command: str) -> bool:
        argv = containers.has_command_argv(self.runtime, self.name, command)
        return subprocess.run(argv, capture_output=True, timeout=60).returncode == 0

    def signal_all(self, signal_name: str) -> None:
        """Send a signal to every process started in the container."""
        argv = containers.signal_argv(self.runtime, self.name, signal_name)
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
        if self.client.stdin is not None and not self.client.stdin.closed:
            try:
                self.client.stdin.close()
            except OSError:
                pass
        try:
            self.client.wait(REMOVE_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.client.kill()
            self.client.wait()
        argv = containers.remove_argv(self.runtime, self.name)
        subprocess.run(argv, capture_output=True, timeout=60)  # a no-op once it is gone
        if self.client.stdout is not None:
            self.client.stdout.close()


def prepare_image(
    runtime: str,
    spec: ContainerSpec,
    auth_dir: Path,
    stop: Callable[[], bool],
    *,
    progress: Callable[[str], None] | None = None,
) -> bool:
    """Make sure the image is on this node: pull it (after a login) when it is not.

    Returns whether it had to be pulled. The login file lives in ``auth_dir`` (owner only)
    and is removed once the pull is over.
    """
    image = containers.image_name(spec)
    if _run(containers.image_exists_argv(runtime, image), stop=stop)[0] == 0:
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
        code, output = _run(containers.pull_argv(runtime, image, auth), stop=stop, lines=progress)
        if code != 0:
            raise ContainerError(
                f"image {image} is not on this node and could not be pulled", _tail(output)
            )
        return True
    finally:
        if auth is not None:
            shutil.rmtree(auth, ignore_errors=True)


def start(
    runtime: str,
    spec: ContainerSpec,
    name: str,
    binds: Sequence[Path],
    log: Path,
    *,
    gpus: Sequence[int] = (),
) -> JobContainer:
    """Start the job's container with the node's ``gpus``; its runtime's messages go to ``log``."""
    argv = containers.run_argv(runtime, spec, name, binds, gpus)
    with open(log, "ab") as err:
        client = Popen(argv, stdin=PIPE, stdout=PIPE, stderr=err, start_new_session=True)
    container = JobContainer(runtime, name, containers.image_name(spec), client)
    if not _wait_ready(client, START_TIMEOUT_SECONDS):
        container.remove()
        raise ContainerError(
            f"the container of image {container.image} did not start", _tail(_read(log))
        )
    return container


def _wait_ready(client: Popen[bytes], timeout: float) -> bool:
    assert client.stdout is not None
    fd, seen = client.stdout.fileno(), b""
    deadline = time.monotonic() + timeout
    while b"\n" not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return False
        chunk = os.read(fd, 4096)
        if not chunk:
            return False
        seen += chunk
    return seen.split(b"\n", 1)[0].strip() == containers.READY.encode()


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

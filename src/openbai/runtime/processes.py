"""Starting a job's processes with their output going straight to files, and stopping them.

stdout and stderr are the files themselves (opened for appending and handed to the child), so
every byte a process writes is in the file as soon as it is written, whatever happens to the
runner or the server afterwards.
"""

from __future__ import annotations

import errno
import os
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import psutil

#: seconds between SIGTERM and SIGKILL when a job is stopped
GRACE_SECONDS = 5.0


def start(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    stdout: Path,
    stderr: Path,
    preexec: Callable[[], None] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session with stdout/stderr appended to the given files
    (``preexec`` runs in the child before ``argv``: joining the slot's control group)."""
    with open(stdout, "ab") as out, open(stderr, "ab") as err:
        return subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            preexec_fn=preexec,
        )


def bash(command: str) -> list[str]:
    """``bash -c command`` with bash found through the runner's own PATH: ``Popen`` would look
    it up through the job's, which the job may set (to a directory without bash)."""
    return [_BASH, "-c", command]


_BASH = shutil.which("bash") or "/bin/bash"


def exit_code(returncode: int) -> int:
    """A shell's view of a return code: killed by signal N is 128+N."""
    return 128 - returncode if returncode < 0 else returncode


def kill_tree(pid: int, *, grace: float = GRACE_SECONDS) -> None:
    """Stop a process, its process group and every descendant: SIGTERM, then SIGKILL."""
    procs = _tree(pid)
    _signal_all(pid, procs, signal.SIGTERM)
    _, alive = psutil.wait_procs(procs, timeout=grace)
    if alive:
        _signal_all(pid, alive, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=grace)


def stop_sandbox(pid: int, *, grace: float = GRACE_SECONDS) -> None:
    """Stop a sandboxed task (``pid`` is bwrap): SIGTERM to the processes inside, then
    SIGKILL to bwrap, whose PID namespace takes every process in it along."""
    procs = _tree(pid)
    inside = []
    for proc in procs[1:]:
        try:
            if proc.ppid() != pid:  # the namespace's init (bwrap) gets no SIGTERM: it would end all
                inside.append(proc)
        except psutil.NoSuchProcess:
            pass
    for proc in inside:
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(inside, timeout=grace)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    psutil.wait_procs(procs, timeout=grace)


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _signal_all(pid: int, procs: list[psutil.Process], sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)  # the group catches children that were just forked
    except (ProcessLookupError, PermissionError):
        pass
    for proc in procs:
        try:
            proc.send_signal(sig)
        except psutil.NoSuchProcess:
            pass


def process_start_time(pid: int) -> float:
    return float(psutil.Process(pid).create_time())


def wait_any(procs: Sequence[subprocess.Popen[bytes]], *, timeout: float) -> None:
    """Sleep until one of ``procs`` exits or ``timeout`` passes.

    A pidfd per process turns readable the moment the process ends, so a short task is seen
    ending at once rather than at the next poll.
    """
    if any(p.returncode is not None for p in procs):
        return
    fds: list[int] = []
    try:
        for p in procs:
            fds.append(os.pidfd_open(p.pid))
        select.select(fds, [], [], timeout)
    except ProcessLookupError:  # one of them was reaped already
        return
    except OSError as exc:
        if exc.errno != errno.ENOSYS:
            raise
        _poll_any(procs, timeout=timeout)  # no pidfds before Linux 5.3
    finally:
        for fd in fds:
            os.close(fd)


def _poll_any(procs: Sequence[subprocess.Popen[bytes]], *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            return
        time.sleep(min(0.005, max(0.0, deadline - time.monotonic())))

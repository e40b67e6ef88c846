"""Starting a job's processes with their output going straight to files, and stopping them.

stdout and stderr are the files themselves (opened for appending and handed to the child), so
every byte a process writes is in the file as soon as it is written, whatever happens to the
runner or the server afterwards.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import select
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

#: seconds between SIGTERM and SIGKILL when a job is stopped (process_trees.py)
GRACE_SECONDS = 5.0


def start(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    stdout: Path | int,
    stderr: Path | int,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session with stdout/stderr appended to the given files (or
    descriptors of files opened for appending, which stay the caller's to close), with
    ``pass_fds`` open in it too."""
    with contextlib.ExitStack() as files:
        out = stdout if isinstance(stdout, int) else files.enter_context(open(stdout, "ab"))
        err = stderr if isinstance(stderr, int) else files.enter_context(open(stderr, "ab"))
        return subprocess.Popen(
            [program(argv[0]), *argv[1:]],
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
        )


def program(name: str) -> str:
    """``name`` found through the runner's own PATH. ``Popen`` looks a bare name up through
    the PATH of the environment it is given: a task's, which the job sets, and the program
    (a container runtime's client, say) runs as root."""
    if os.sep in name:
        return name
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(errno.ENOENT, f"{name} is not on the node's PATH", name)
    return found


#: a job task's first line: job preparation's edits to ``~/.bashrc`` reach the job (the
#: recipes append ``source .../mpivars.sh`` to it), as Batch AI's launcher shell read it
READ_BASHRC = "if [ -f ~/.bashrc ]; then . ~/.bashrc; fi\n"


def bash(command: str) -> list[str]:
    """``bash -c command`` with bash found through the runner's own PATH: ``Popen`` would look
    it up through the job's, which the job may set (to a directory without bash)."""
    return [_BASH, "-c", command]


_BASH = shutil.which("bash") or "/bin/bash"


def exit_code(returncode: int) -> int:
    """A shell's view of a return code: killed by signal N is 128+N."""
    return 128 - returncode if returncode < 0 else returncode


def process_start_time(pid: int) -> float:
    """When ``pid`` started, in seconds since the epoch: psutil's ``create_time()`` (what
    :func:`openbai.plan.pids.pid_is_alive` compares a recorded start with), by psutil's own
    rule: the start in clock ticks after boot (``/proc/<pid>/stat``) plus the boot time
    (``/proc/stat``). Read here, not through psutil: its import is ~11 ms of every Slurm
    job's runner, which records its own start and its tasks'."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rpartition(b")")[2].split()
    return int(fields[19]) / os.sysconf("SC_CLK_TCK") + _boot_time()


@functools.cache
def _boot_time() -> float:
    with open("/proc/stat", "rb") as f:
        for line in f:
            if line.startswith(b"btime"):
                return float(line.split()[1])
    raise OSError("no btime in /proc/stat")


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

"""A warm process that forks node runners: a runner starts in a few milliseconds instead of
the ~100 ms a fresh interpreter needs to import it.

The server (``python -m openbai.executors.forkserver EVENTS_FD``) has the runner imported,
reads one JSON request per line on stdin (``{"argv", "output"}``), forks a runner for each —
in its own session, stdout/stderr to ``output`` — and answers each, in order, on stdout with
``{"pid", "started"}``. When a runner ends it writes ``{"exited": pid, "code": n}`` to the
events pipe ``EVENTS_FD``. Answers and events go to separate pipes so that the thread asking
for runners reads its answers itself, while a background thread hears the ends: a start then
costs one round trip to the server, with no hand-over between threads. The server is
single-threaded, so forking it is safe. When its client goes away (stdin closes) it exits;
runners already started keep running, as runners started any other way do.
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import IO

#: blocked in a runner from its fork until it has its handlers (runner.main unblocks them)
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def _child(argv: list[str], output: str) -> None:
    """In the forked child: become a session leader with clean fds, then run the runner."""
    os.setsid()
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    out = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    for target, source in ((0, null), (1, out), (2, out)):
        os.dup2(source, target)
    os.closerange(3, 1024)
    sys.stdin = open(0)
    sys.stdout = open(1, "w", buffering=1)
    sys.stderr = open(2, "w", buffering=1)
    from openbai.runtime.runner import main

    try:
        code = main(argv)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def serve(events_fd: int) -> None:
    import psutil

    # imported once, before any fork (the point); some a runner loads only for the jobs that
    # use them, as a Slurm runner, a new Python for every job, does
    import openbai.runtime.node_container  # noqa: F401  (containers)
    import openbai.runtime.process_trees  # noqa: F401  (stopping a task early)
    import openbai.runtime.runner  # noqa: F401
    import openbai.storage.local  # noqa: F401  (embedded volumes' backend: ~2 ms a runner)
    from openbai.runtime import sandbox

    sandbox.warm()  # runners inherit the probe's result instead of each making a sandbox more

    # what is imported now is never collected: a child's garbage collections then leave
    # these objects' pages alone, instead of copying them all on write
    gc.freeze()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    requests = sys.stdin.buffer
    replies = sys.stdout
    events = os.fdopen(events_fd, "w")
    buffer = b""
    while True:
        ready, _, _ = select.select([requests, wake_r], [], [])
        if wake_r in ready:
            os.read(wake_r, 4096)
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            events.write(
                json.dumps({"exited": pid, "code": os.waitstatus_to_exitcode(status)}) + "\n"
            )
        events.flush()
        if requests in ready:
            data = os.read(requests.fileno(), 65536)
            if not data:
                return
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                request = json.loads(line)
                # a runner is asked to stop with SIGTERM as soon as its pid is known: held
                # back until it can answer (its handler writes the job's end; the default
                # action would end it without one, and the job would be lost)
                signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
                pid = os.fork()
                if pid == 0:
                    _child(request["argv"], request["output"])
                signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
                started = psutil.Process(pid).create_time()
                replies.write(json.dumps({"pid": pid, "started": started}) + "\n")
            replies.flush()


class ForkServer:
    """The client side: start the server once, ask it for runners, hear when they end."""

    def __init__(self, on_exit: Callable[[int], None]):
        self._on_exit = on_exit
        events_r, events_w = os.pipe()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "openbai.executors.forkserver", str(events_w)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                pass_fds=(events_w,),
                start_new_session=True,
            )
        finally:
            os.close(events_w)
        self._events = os.fdopen(events_r, "rb")
        self._lock = threading.Lock()
        threading.Thread(target=self._hear_ends, daemon=True, name="forkserver-events").start()

    def _hear_ends(self) -> None:
        with self._events:
            for line in self._events:
                self._on_exit(int(json.loads(line)["exited"]))

    def is_running(self) -> bool:
        return self._proc.poll() is None

    def spawn(self, runners: list[tuple[list[str], str]]) -> list[tuple[int, float]]:
        """Start runners (argv, output file) at once; their pids and start times, in order."""
        stdin: IO[bytes] | None = self._proc.stdin
        stdout: IO[bytes] | None = self._proc.stdout
        assert stdin is not None and stdout is not None
        with self._lock:
            stdin.write(
                b"".join(
                    (json.dumps({"argv": argv, "output": output}) + "\n").encode()
                    for argv, output in runners
                )
            )
            stdin.flush()
            replies = [stdout.readline() for _ in runners]
        if not all(replies):
            raise OSError("the fork server ended")
        return [(int(r["pid"]), float(r["started"])) for r in map(json.loads, replies)]

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(timeout=10)


if __name__ == "__main__":
    serve(int(sys.argv[1]))

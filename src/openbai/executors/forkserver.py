"""A warm process that forks node runners: a runner starts in a few milliseconds instead of
the ~100 ms a fresh interpreter needs to import it.

The server (``python -m openbai.executors.forkserver``) has the runner imported, reads one
JSON request per line on stdin (``{"id", "argv", "output"}``), forks a runner for each — in its
own session, stdout/stderr to ``output`` — and answers on stdout with ``{"id", "pid",
"started"}``, later ``{"exited": pid, "code": n}`` when the runner ends. It is single-threaded,
so forking it is safe. When its client goes away (stdin closes) it exits; runners already
started keep running, as runners started any other way do.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import IO, Any


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


def serve() -> None:
    import psutil

    import openbai.runtime.runner  # noqa: F401  (the point: imported once, before any fork)

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    requests = sys.stdin.buffer
    replies = sys.stdout
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
            replies.write(
                json.dumps({"exited": pid, "code": os.waitstatus_to_exitcode(status)}) + "\n"
            )
        if requests in ready:
            data = os.read(requests.fileno(), 65536)
            if not data:
                return
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    _child(request["argv"], request["output"])
                started = psutil.Process(pid).create_time()
                replies.write(
                    json.dumps({"id": request["id"], "pid": pid, "started": started}) + "\n"
                )
        replies.flush()


class ForkServer:
    """The client side: start the server once, ask it for runners, hear when they end."""

    def __init__(self, on_exit: Callable[[int], None]):
        self._on_exit = on_exit
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "openbai.executors.forkserver"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        self._lock = threading.Lock()
        self._pending: dict[int, Future[tuple[int, float]]] = {}
        self._next = 0
        threading.Thread(target=self._read, daemon=True, name="forkserver-replies").start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            reply: dict[str, Any] = json.loads(line)
            if "exited" in reply:
                self._on_exit(int(reply["exited"]))
                continue
            with self._lock:
                future = self._pending.pop(int(reply["id"]))
            future.set_result((int(reply["pid"]), float(reply["started"])))
        with self._lock:
            for future in self._pending.values():
                future.set_exception(OSError("the fork server ended"))
            self._pending.clear()

    def is_running(self) -> bool:
        return self._proc.poll() is None

    def spawn(self, argv: list[str], output: str) -> tuple[int, float]:
        """Start a runner; its pid and start time."""
        future: Future[tuple[int, float]] = Future()
        with self._lock:
            self._next += 1
            request_id = self._next
            self._pending[request_id] = future
            stdin: IO[bytes] | None = self._proc.stdin
            assert stdin is not None
            stdin.write(
                (json.dumps({"id": request_id, "argv": argv, "output": output}) + "\n").encode()
            )
            stdin.flush()
        return future.result(timeout=30)

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(timeout=10)


if __name__ == "__main__":
    serve()

"""Whole lines from every MPI rank in the job's stdout.txt and stderr.txt.

mpirun forwards each rank's output in chunks as it reads them, not in lines, so two ranks
printing at once interleave inside a line ("rankrank 1 of 2 ..."). Instead, each rank's output
goes over its own TCP connection to a collector next to mpirun, which keeps a partial-line
buffer per connection and writes only whole lines (in one ``write`` each batch) to its own
stdout and stderr: the job's files. The bytes are those the ranks wrote, in each rank's order.

* ``python -m openbai.runtime.rank_output collect HOST -- ARGV``: the task on the first node.
  It listens on a free port, runs ``ARGV`` (the ``mpirun`` command line) with
  ``OPENBAI_RANK_OUTPUT="HOST PORT TOKEN"`` and ``OPENBAI_RANK_RELAY`` (this Python) set, and
  merges the ranks' connections and mpirun's own output. It exits as mpirun did.
* ``python -m openbai.runtime.rank_output relay ARGV``: what mpirun starts as each rank (the
  toolkit's command line names it only when the collector set the variables). It connects
  twice (stdout, stderr), runs ``ARGV`` with pipes as its stdout and stderr (so that
  ``/dev/stdout`` still opens) and copies them to the connections. Without a collector to
  reach, it becomes ``ARGV`` and mpirun forwards the output as before.

Only the standard library: a rank pays for nothing but the interpreter's start. The
collector's token (``secrets``, ``hmac``: hashlib, ~3 ms to import) is loaded by the collector
alone, so that neither a rank's relay nor a node runner, which imports this module for the
command lines below, pays for it.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

ADDRESS_ENV = "OPENBAI_RANK_OUTPUT"
RELAY_ENV = "OPENBAI_RANK_RELAY"

#: the words of an mpirun command line that start each rank through the relay, when (and only
#: when) a collector runs mpirun; bash expands them to nothing otherwise (in a container)
RELAY_WORDS = (
    f'${{{ADDRESS_ENV}+-x {ADDRESS_ENV} "${RELAY_ENV}" -m openbai.runtime.rank_output relay}}'
)

#: a line longer than this is written in pieces: the collector's memory stays bounded
MAX_PARTIAL = 1 << 20
#: after mpirun (or a rank) ended, how long what it left running may still send output
DRAIN_SECONDS = 5.0
_CHUNK = 1 << 16
_STREAMS = {b"1": 1, b"2": 2}


def collector_argv(host: str, argv: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "openbai.runtime.rank_output", "collect", host, "--", *argv]


class LineWriter:
    """Writes to ``fd`` only whole lines, from any number of sources, each source's bytes in
    order. A line ends at ``\\n``, or at a ``\\r`` followed by more output (progress bars)."""

    def __init__(self, fd: int):
        self.fd = fd
        self.partial: dict[object, bytearray] = {}

    def feed(self, source: object, data: bytes) -> None:
        buf = self.partial.setdefault(source, bytearray())
        buf += data
        end = max(buf.rfind(b"\n"), buf.rfind(b"\r", 0, len(buf) - 1))
        if end >= 0:
            self._write(buf[: end + 1])
            del buf[: end + 1]
        elif len(buf) >= MAX_PARTIAL:
            self._write(buf)
            buf.clear()

    def close(self, source: object) -> None:
        """The source ended: what it wrote after its last line end is written as it is."""
        buf = self.partial.pop(source, None)
        if buf:
            self._write(buf)

    def close_all(self) -> None:
        for source in list(self.partial):
            self.close(source)

    def _write(self, data: bytes | bytearray) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]


class _Connection:
    """A relay's connection: a header line ``TOKEN STREAM``, then that stream's bytes."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.header = bytearray()
        self.stream: int | None = None


def collect(host: str, argv: Sequence[str]) -> int:
    import secrets

    token = secrets.token_hex(16)
    if socket.has_dualstack_ipv6():
        listener = socket.create_server(("", 0), family=socket.AF_INET6, dualstack_ipv6=True)
    else:
        listener = socket.create_server(("", 0))
    listener.setblocking(False)
    port = listener.getsockname()[1]
    env = {**os.environ, ADDRESS_ENV: f"{host} {port} {token}", RELAY_ENV: sys.executable}
    child = subprocess.Popen(
        list(argv),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _forward_signals(child)
    writers = {1: LineWriter(1), 2: LineWriter(2)}
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    assert child.stdout is not None and child.stderr is not None
    pipes = {child.stdout.fileno(): 1, child.stderr.fileno(): 2}
    for fd in pipes:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    connections: dict[int, _Connection] = {}
    drain_until: float | None = None
    while True:
        if drain_until is None and child.poll() is not None:
            drain_until = time.monotonic() + DRAIN_SECONDS
        if drain_until is not None:
            left = drain_until - time.monotonic()
            if left <= 0 or not (connections or pipes):
                # a relay that connected but was not accepted yet still counts
                if left <= 0 or not sel.select(timeout=0):
                    break
            timeout = max(0.0, min(left, 0.1))
        else:
            timeout = 0.1  # mpirun's end is seen by polling it
        for key, _ in sel.select(timeout=timeout):
            if key.fileobj is listener:
                _accept(listener, sel, connections)
            elif isinstance(key.fileobj, int):
                fd = key.fileobj
                data = _read(fd)
                if data:
                    writers[pipes[fd]].feed(fd, data)
                elif data is not None:
                    sel.unregister(fd)
                    writers[pipes.pop(fd)].close(fd)
            else:
                conn = connections[key.fd]
                if not _receive(conn, token, writers):
                    sel.unregister(conn.sock)
                    del connections[key.fd]
                    if conn.stream is not None:
                        writers[conn.stream].close(conn)
                    conn.sock.close()
    for writer in writers.values():
        writer.close_all()
    code = child.wait()
    return 128 - code if code < 0 else code


def _accept(
    listener: socket.socket, sel: selectors.BaseSelector, connections: dict[int, _Connection]
) -> None:
    try:
        sock, _ = listener.accept()
    except BlockingIOError:
        return
    sock.setblocking(False)
    conn = _Connection(sock)
    connections[sock.fileno()] = conn
    sel.register(sock, selectors.EVENT_READ)


def _read(fd: int) -> bytes | None:
    """Bytes from ``fd``; b"" at its end; None when nothing was there after all."""
    try:
        return os.read(fd, _CHUNK)
    except BlockingIOError:
        return None


def _receive(conn: _Connection, token: str, writers: dict[int, LineWriter]) -> bool:
    import hmac

    """Read what the connection has; False when it ended (or is not one of our relays)."""
    try:
        data = conn.sock.recv(_CHUNK)
    except BlockingIOError:
        return True
    except OSError:
        return False
    if not data:
        return False
    if conn.stream is None:
        conn.header += data
        line_end = conn.header.find(b"\n")
        if line_end < 0:
            return len(conn.header) < 256
        given, _, stream = bytes(conn.header[:line_end]).partition(b" ")
        if not hmac.compare_digest(given, token.encode()) or stream not in _STREAMS:
            return False
        conn.stream = _STREAMS[stream]
        data = bytes(conn.header[line_end + 1 :])
        conn.header.clear()
    if data:
        writers[conn.stream].feed(conn, data)
    return True


def _forward_signals(child: subprocess.Popen[bytes]) -> None:
    """A signal meant for the task goes to mpirun, which stops the ranks and ends; the
    collector itself goes on until then, so that nothing the ranks wrote is lost."""

    def forward(signum: int, frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)


def relay(argv: Sequence[str]) -> int:
    address = os.environ.pop(ADDRESS_ENV, "")
    os.environ.pop(RELAY_ENV, None)
    try:
        host, port, token = address.split()
        sockets = [socket.create_connection((host, int(port)), timeout=30) for _ in range(2)]
        for sock, stream in zip(sockets, (b"1", b"2"), strict=True):
            sock.sendall(token.encode() + b" " + stream + b"\n")
            sock.settimeout(None)
    except (OSError, ValueError):
        # no collector to reach: the rank's output goes through mpirun, as it always did
        os.execvp(argv[0], list(argv))
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    # mpirun signals the rank's whole process group: the child gets it by itself
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: None)
    child = subprocess.Popen(list(argv), stdout=out_w, stderr=err_w)
    os.close(out_w)
    os.close(err_w)
    targets = {out_r: sockets[0], err_r: sockets[1]}
    sel = selectors.DefaultSelector()
    for fd in targets:
        sel.register(fd, selectors.EVENT_READ)
    drain_until: float | None = None
    while targets:
        if drain_until is None and child.poll() is not None:
            drain_until = time.monotonic() + DRAIN_SECONDS
        if drain_until is not None and time.monotonic() > drain_until:
            break  # something the rank started still holds its output open
        for key, _ in sel.select(timeout=0.1):
            fd = int(key.fd)
            data = os.read(fd, _CHUNK)
            try:
                if data:
                    targets[fd].sendall(data)
                    continue
            except OSError:
                pass  # the collector is gone (the task is being stopped): so is the reader
            sel.unregister(fd)
            targets.pop(fd).close()
            os.close(fd)
    for sock in sockets:
        sock.close()
    code = child.wait()
    if code < 0:  # end as the rank did, so that mpirun reports the signal
        try:
            signal.signal(-code, signal.SIG_DFL)
        except (OSError, ValueError):
            pass  # SIGKILL and SIGSTOP have no handler to reset
        os.kill(os.getpid(), -code)
    return 128 - code if code < 0 else code


def main(argv: Sequence[str]) -> int:
    if len(argv) >= 4 and argv[0] == "collect" and argv[2] == "--":
        return collect(argv[1], argv[3:])
    if len(argv) >= 2 and argv[0] == "relay":
        return relay(argv[1:])
    print(
        "usage: python -m openbai.runtime.rank_output collect HOST -- ARGV...\n"
        "       python -m openbai.runtime.rank_output relay ARGV...",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

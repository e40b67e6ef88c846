"""The node runners' side of mpi_agent.py: MPI's daemons started as tasks of the job.

A multi-node MPI job on hosts of their own (Slurm) gets, on every node but the first, a
:class:`DaemonListener` from before the node reports itself prepared: it listens on a port the
system picks and writes the port and a token (``node-K.mpi``, 0600) in the run directory. The
first node, once every node is prepared, hands them to mpirun (:func:`agent_env`). Each
request with the node's token starts its words with bash, as a non-primary task of the job on
this node (sandbox, job user, control group, the node's job variables; in the node's container
for a job that has one), and relays the task's output back until it ends; a request whose
agent went away stops its task. The listener closes before the node's tasks are stopped, so
that nothing starts after.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import selectors
import socket
import sys
import threading
from pathlib import Path

from openbai.files import write_private
from openbai.runtime import mpi_agent
from openbai.runtime.environment import JobEnvironment
from openbai.runtime.node import MPI_TOOLS, NodeContext
from openbai.runtime.stopping import JobFailure
from openbai.runtime.tasks import NodeTasks, Piped
from openbai.runtime.toolkits import Task

_CHUNK = 1 << 16
#: the agent's source, for mpirun in a job's container
AGENT_SOURCE = "OPENBAI_MPI_AGENT"


def other_hosts(ctx: NodeContext) -> list[int]:
    """The nodes whose MPI daemons mpirun starts through the agent: those on another host
    than the first node's, in an MPI job."""
    plan = ctx.plan
    if plan.tool_type not in MPI_TOOLS or plan.node_count < 2:
        return []
    first = plan.nodes[0].host
    return [n.index for n in plan.nodes if n.host != first]


def _address_file(ctx: NodeContext, node: int) -> Path:
    return ctx.run.path / f"node-{node}.mpi"


def agent_env(tasks: NodeTasks, env: JobEnvironment) -> dict[str, str]:
    """mpirun's variables on the first node: the agent and where the other nodes listen."""
    ctx = tasks.ctx
    nodes = {}
    for index in other_hosts(ctx):
        port, token = _address_file(ctx, index).read_text().split()
        nodes[ctx.plan.nodes[index].host] = f"{port}:{token}"
    if not nodes:
        return {}
    if tasks.container is None:
        return mpi_agent.agent_env(f"{sys.executable} -m {mpi_agent.MODULE}", nodes)
    # mpirun in the container runs the agent with the image's Python, from a variable: no
    # file of it to place where the job could change it (OpenMPI splits the agent's command
    # line at spaces, and quotes nothing)
    if not tasks.container.has_command("python3"):
        raise JobFailure(
            "MpiAgentNeedsPython",
            f"mpirun in the job's container image {tasks.container.image} starts the ranks "
            "on the other hosts through openbai's agent, which runs with the image's python3 "
            "(3.7 or later), and the image has none: install python3 in the image",
            127,
        )
    source = Path(mpi_agent.__file__).read_text()
    agent = f"python3 -c exec(__import__('os').environ['{AGENT_SOURCE}'])"
    return {**mpi_agent.agent_env(agent, nodes), AGENT_SOURCE: source}


class DaemonListener:
    def __init__(self, tasks: NodeTasks, env: JobEnvironment):
        self.tasks = tasks
        #: the node's job variables, read at each start: the container's are set after this
        self.env = env
        self.token = secrets.token_hex(16)
        self.server = socket.create_server(("", 0), family=socket.AF_INET, backlog=16)
        self.server.settimeout(0.2)
        self.closed = False
        #: taken to start a task, and to close: nothing starts once :meth:`close` returned
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, name="mpi-daemons", daemon=True)
        self.thread.start()
        ctx = tasks.ctx
        port = self.server.getsockname()[1]
        write_private(_address_file(ctx, ctx.node.index), f"{port} {self.token}\n", durable=False)
        ctx.log(f"MPI daemons of this job start here through port {port}")

    def close(self) -> None:
        with self.lock:
            self.closed = True
        self.thread.join()
        self.server.close()
        _address_file(self.tasks.ctx, self.tasks.ctx.node.index).unlink(missing_ok=True)

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            try:
                request = _read_request(conn)
            except (OSError, ValueError):
                return
            if request is None or not hmac.compare_digest(
                str(request.get("token", "")), self.token
            ):
                return
            words = request.get("words")
            if not isinstance(words, list):
                return
            conn.settimeout(None)
            self._run(conn, " ".join(map(str, words)).strip())

    def _run(self, conn: socket.socket, command: str) -> None:
        ctx = self.tasks.ctx
        with self.lock:
            if self.closed:
                return
            ctx.log(f"starting MPI daemon: {command}")
            task = Task("mpi-daemon", ctx.node.index, command, primary=False)
            piped = self.tasks.start_piped(task, self.tasks.env(self.env, {}))
        try:
            _relay(conn, piped, self.tasks)
        finally:
            piped.close()


def _read_request(conn: socket.socket) -> dict[str, object] | None:
    data = bytearray()
    while b"\n" not in data:
        chunk = conn.recv(4096)
        if not chunk or len(data) > mpi_agent.MAX_REQUEST:
            return None
        data += chunk
    request = json.loads(data.partition(b"\n")[0])
    return request if isinstance(request, dict) else None


def _relay(conn: socket.socket, piped: Piped, tasks: NodeTasks) -> None:
    """The task's output to the agent until the task has ended and its output is read, then
    its exit code; the agent gone (its end of the connection closed) stops the task."""
    running = piped.running
    streams = {piped.stdout: b"1", piped.stderr: b"2"}
    agent_there = True
    with selectors.DefaultSelector() as sel:
        for fd in streams:
            sel.register(fd, selectors.EVENT_READ)
        sel.register(conn, selectors.EVENT_READ)
        while streams:
            ended = running.process.poll() is not None
            ready = sel.select(timeout=0 if ended else 0.2)
            if ended and not ready:
                break  # what the streams held when the task ended is read
            for key, _ in ready:
                if key.fileobj is conn:  # the agent sends nothing more: this is its end
                    sel.unregister(conn)
                    agent_there = False
                    tasks.stop(running)
                    continue
                fd = int(key.fd)
                try:
                    data = os.read(fd, _CHUNK)
                except BlockingIOError:
                    continue
                if not data:
                    sel.unregister(fd)
                    del streams[fd]
                elif agent_there and not _send(conn, mpi_agent.frame(streams[fd], data)):
                    sel.unregister(conn)
                    agent_there = False
                    tasks.stop(running)
    running.process.wait()
    if agent_there:
        _send(conn, mpi_agent.exit_frame(running.exit_code()))


def _send(conn: socket.socket, data: bytes) -> bool:
    try:
        conn.sendall(data)
        return True
    except OSError:
        return False

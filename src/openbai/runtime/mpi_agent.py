"""How ``mpirun`` starts its daemons on a job's other nodes: through their node runners.

mpirun reaches another host through a remote-shell agent (OpenMPI's rsh launcher; ssh by
default), which it calls as ``AGENT HOST WORDS...`` and which must run ``WORDS`` there as a
shell would and end as that command did. openbai's agent is this module,
``python -m openbai.runtime.mpi_agent HOST WORDS...``: it asks the node runner of ``HOST`` to
start the words as one of the job's tasks on its node (mpi_daemons.py): in that node's
sandbox, as the job user, in its control group, with the job's variables for that node.
What the task writes comes back here, to this agent's stdout and stderr (mpirun's), and the
agent exits with the task's code. An agent that goes away takes its task along.

Slurm's own launcher (``srun``) is not used: it starts the daemons as the Slurm job's owner
(the runners' user, root in a usual install) outside any sandbox, and only that owner may use
it: a job able to reach it holds root on every node.

Where to reach each host is in ``OPENBAI_MPI_NODES`` (``HOST=PORT:TOKEN`` words), which the
first node's runner sets for mpirun alone. A request is one JSON line, ``{"token": ...,
"words": [...]}``; the answer is frames, a stream byte (``1``/``2``) and a 4-byte length
before each piece of output, and ``x`` with the exit code last.

Only the standard library, and nothing but this module: the agent is started once per other
node of every MPI job, and in a job's container it is this module's source, handed to the
image's python3 in a variable (mpirun there is the image's, on the host network).
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
from collections.abc import Sequence

NODES_ENV = "OPENBAI_MPI_NODES"
MODULE = "openbai.runtime.mpi_agent"
#: what OpenMPI is told (its MCA parameters, by environment) to start its daemons through us:
#: without tree spawning only mpirun (the first node's) calls the agent, and the daemons stay
#: attached instead of daemonizing (which the sandbox would end, and which would leave the
#: agent nothing to wait for)
AGENT_PARAMETERS = {
    "OMPI_MCA_plm": "rsh",
    "OMPI_MCA_plm_rsh_no_tree_spawn": "1",
    "OMPI_MCA_orte_leave_session_attached": "1",
}
AGENT_PARAMETER = "OMPI_MCA_plm_rsh_agent"

HEADER = struct.Struct("!cI")
EXIT = b"x"
#: a request line longer than this is refused (an orted command line is ~1 KiB)
MAX_REQUEST = 1 << 16
#: ssh's own code for "the connection failed", which mpirun reports as a daemon that failed
UNREACHABLE = 255


def agent_env(agent: str, nodes: dict[str, str]) -> dict[str, str]:
    """mpirun's variables that make it start its daemons on ``nodes`` (host → port:token)
    through ``agent`` (this module's command line where mpirun runs)."""
    return {
        **AGENT_PARAMETERS,
        AGENT_PARAMETER: agent,
        NODES_ENV: " ".join(f"{host}={where}" for host, where in sorted(nodes.items())),
    }


def frame(stream: bytes, data: bytes) -> bytes:
    return HEADER.pack(stream, len(data)) + data


def exit_frame(code: int) -> bytes:
    """The last frame: the task's exit code as a shell gives it (0-255)."""
    return HEADER.pack(EXIT, code & 0xFF)


def _recv_exactly(conn: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def run(host: str, words: Sequence[str], nodes: str) -> int:
    """Run ``words`` on ``host`` through its runner; the exit code, as ssh gives it."""
    known = dict(w.split("=", 1) for w in nodes.split() if "=" in w)
    if host not in known:
        print(f"openbai: {host} is not one of this job's other nodes", file=sys.stderr)
        return UNREACHABLE
    port, _, token = known[host].partition(":")
    try:
        conn = socket.create_connection((host, int(port)), timeout=30)
    except (OSError, ValueError) as exc:
        print(f"openbai: cannot reach the node runner of {host}: {exc}", file=sys.stderr)
        return UNREACHABLE
    with conn:
        conn.settimeout(None)
        conn.sendall(json.dumps({"token": token, "words": list(words)}).encode() + b"\n")
        while True:
            header = _recv_exactly(conn, HEADER.size)
            if header is None:
                print(f"openbai: the node runner of {host} closed the connection", file=sys.stderr)
                return UNREACHABLE
            kind, size = HEADER.unpack(header)
            if kind == EXIT:
                return int(size)
            data = _recv_exactly(conn, size)
            if data is None:
                return UNREACHABLE
            _write_all(1 if kind == b"1" else 2, data)


def main(argv: Sequence[str]) -> int:
    # an rsh agent may be given options before the host (ssh's -x): none is ours
    args = list(argv)
    while args and args[0].startswith("-"):
        args.pop(0)
    if len(args) < 2:
        print("usage: python -m openbai.runtime.mpi_agent HOST COMMAND...", file=sys.stderr)
        return 2
    return run(args[0], args[1:], os.environ.get(NODES_ENV, ""))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

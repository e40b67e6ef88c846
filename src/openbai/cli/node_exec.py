"""``cluster node exec`` and ``job node exec``: a command on a node, without SSH.

az logged in to the node over SSH as the cluster's admin user and ran ``bash -ilc CMD``;
openbai's nodes have no SSH endpoint, so the command runs where the installation is, as a
job's task would run on that node (services/nodes.py). az's SSH flags are accepted so that
its scripts still run: the credentials are not needed, port forwarding cannot be done.
With ``--server``, the server runs ``--exec CMD`` the same way (api/node_exec.py) and its
output and exit code are bai's.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import click

from openbai.cli.common import CliContext, client
from openbai.cli.output import err
from openbai.errors import NotFoundError, SpecError
from openbai.installation import App

if TYPE_CHECKING:
    from openbai.cli.protocol import Client


def exec_options(f: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "-n", "--node-id", default=None, help="The node (default: the first one)."
            ),
            click.option(
                "--exec", "command", default=None, help="Command line (default: a shell)."
            ),
            click.option(
                "-L",
                "--address",
                multiple=True,
                help="Port forwarding (local:host:remote): needs SSH, not available.",
            ),
            click.option(
                "--timeout",
                default=300,
                show_default=True,
                type=click.IntRange(1, 3600),
                help="Seconds the command may run through --server before it is killed.",
            ),
            click.option("-p", "--password", default=None, hidden=True),
            click.option("-k", "--ssh-private-key", default=None, hidden=True),
        ]
    ):
        f = option(f)
    return f


def run_on_node(
    command: Callable[[App], Any],
    address: tuple[str, ...],
    *,
    remote: Callable[[Client, str], dict[str, Any]],
    command_line: str | None,
    timeout: int,
) -> None:
    """Run what ``command`` (services/nodes.py) says, passing the terminal through; exit
    with its exit code. Through ``--server``, ``remote(client, command_line)`` has the server
    run it (no terminal there: ``--exec`` is required) and its output is printed here."""
    if address:
        raise SpecError(
            "-L/--address: port forwarding needs SSH to the node, and openbai's nodes have none",
            target="--address",
        )
    settings = click.get_current_context().find_object(CliContext)
    if settings is not None and settings.server:
        if command_line is None:
            raise SpecError(
                "--exec: through --server a command is required (an interactive shell needs"
                " a terminal on the node's machine: run it there, without --server)",
                target="--exec",
            )
        _print_remote(remote(client(), command_line))
    from openbai.cli.client import EmbeddedClient

    local = client()
    assert isinstance(local, EmbeddedClient)
    found = command(local.app)
    try:
        try:
            run = subprocess.run(
                found.argv, env=found.env, cwd=found.cwd, check=False, pass_fds=found.fds
            )
        finally:
            found.close()
    except FileNotFoundError as exc:
        raise SpecError(f"{found.argv[0]} is not installed here", target="--exec") from exc
    finally:
        found.finish()
    code = run.returncode
    sys.exit(code if code >= 0 else 128 - code)


def _print_remote(result: dict[str, Any]) -> NoReturn:
    """The server's answer as the command's own output; exit with its exit code."""
    sys.stdout.write(str(result.get("stdout", "")))
    sys.stdout.flush()
    sys.stderr.write(str(result.get("stderr", "")))
    for stream in ("stdout", "stderr"):
        if result.get(f"{stream}Truncated"):
            err(f"bai: the command's {stream} was cut at 1 MiB by the server")
    if result.get("timedOut"):
        err("bai: the command ran out of time on the server and was killed (--timeout)")
    sys.exit(int(result.get("exitCode", 1)))


def first_node(nodes: list[dict[str, Any]], node_id: str | None, what: str) -> str:
    """The node named, or the first one (as the local path picks it)."""
    if node_id is not None:
        return node_id
    if not nodes:
        raise NotFoundError(f"{what} has no nodes now", code="NodeNotFound", target="nodeId")
    return str(nodes[0]["nodeId"])

"""``cluster node exec`` and ``job node exec``: a command on a node, without SSH.

az logged in to the node over SSH as the cluster's admin user and ran ``bash -ilc CMD``;
openbai's nodes have no SSH endpoint, so the command runs where the installation is, as a
job's task would run on that node (services/nodes.py). az's SSH flags are accepted so that
its scripts still run: the credentials are not needed, port forwarding cannot be done.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import click

from openbai.cli.common import CliContext, client
from openbai.errors import SpecError
from openbai.installation import App


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
            click.option("-p", "--password", default=None, hidden=True),
            click.option("-k", "--ssh-private-key", default=None, hidden=True),
        ]
    ):
        f = option(f)
    return f


def run_on_node(command: Callable[[App], Any], address: tuple[str, ...]) -> None:
    """Run what ``command`` (services/nodes.py) says, passing the terminal through; exit
    with its exit code."""
    if address:
        raise SpecError(
            "-L/--address: port forwarding needs SSH to the node, and openbai's nodes have none",
            target="--address",
        )
    settings = click.get_current_context().find_object(CliContext)
    if settings is not None and settings.server:
        raise SpecError(
            "--server: node exec runs on the machine of the installation: run it there,"
            " without --server",
            target="--server",
        )
    from openbai.cli.client import EmbeddedClient

    local = client()
    assert isinstance(local, EmbeddedClient)
    found = command(local.app)
    try:
        code = subprocess.run(found.argv, env=found.env, cwd=found.cwd, check=False).returncode
    except FileNotFoundError as exc:
        raise SpecError(f"{found.argv[0]} is not installed here", target="--exec") from exc
    sys.exit(code if code >= 0 else 128 - code)

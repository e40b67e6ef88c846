"""``bai``: the openbai command line, shaped after ``az batchai`` and ``az storage``.

Each command group's module is imported only when the command line names it (``--help``
lists them all): ``bai workspace list`` does not load the storage transfer code, pydantic's
job models or the HTTP client. See "Why the CLI is fast" in the README.
"""

from __future__ import annotations

import copy
import importlib

import click

from openbai import __version__
from openbai.cli.argv import AzGroup
from openbai.cli.common import CliContext

#: command name -> (module, attribute, hidden): imported when the name is used
COMMANDS: dict[str, tuple[str, str, bool]] = {
    "config": ("openbai.cli.config", "config_group", False),
    "workspace": ("openbai.cli.workspace", "workspace_group", False),
    "experiment": ("openbai.cli.workspace", "experiment_group", False),
    "cluster": ("openbai.cli.cluster", "cluster_group", False),
    "job": ("openbai.cli.job", "job_group", False),
    "file-server": ("openbai.cli.file_server", "file_server_group", False),
    "usage": ("openbai.cli.usage", "usage_group", False),
    # az batchai list-usages, the later name of 'usage show'
    "list-usages": ("openbai.cli.usage", "usage_show", True),
    "storage": ("openbai.cli.storage", "storage_group", False),
    "serve": ("openbai.cli.serve", "serve", False),
    "token": ("openbai.cli.serve", "token_group", False),
    "audit": ("openbai.cli.audit", "audit_group", False),
}


class LazyAzGroup(AzGroup):
    """The root group, whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attribute, hidden = COMMANDS[cmd_name]
            command: click.Command = getattr(importlib.import_module(module), attribute)
            if hidden or command.name != cmd_name:  # an alias: a renamed copy
                command = copy.copy(command)
                command.name = cmd_name
                command.hidden = hidden
            self.commands[cmd_name] = command
        return self.commands.get(cmd_name)


@click.group(cls=LazyAzGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bai")
@click.option(
    "--server",
    envvar="BAI_SERVER",
    default=None,
    help="URL of a `bai serve` server (default: work in-process).",
)
@click.option("--token", envvar="BAI_TOKEN", default=None, help="API token for --server.")
@click.pass_context
def cli(ctx: click.Context, server: str | None, token: str | None) -> None:
    """openbai: run Batch AI jobs on your own machines."""
    context = CliContext(server=server, token=token)
    ctx.obj = context
    ctx.call_on_close(context.close)


def main() -> None:
    cli(prog_name="bai")


if __name__ == "__main__":  # python -m openbai.cli.main (and -X importtime)
    main()

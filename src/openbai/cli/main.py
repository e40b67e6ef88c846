"""``bai``: the openbai command line, shaped after ``az batchai`` and ``az storage``."""

from __future__ import annotations

import click

from openbai import __version__
from openbai.cli.argv import AzGroup
from openbai.cli.cluster import cluster_group
from openbai.cli.common import CliContext, hidden_alias
from openbai.cli.config import config_group
from openbai.cli.file_server import file_server_group
from openbai.cli.job import job_group
from openbai.cli.serve import serve, token_group
from openbai.cli.storage import storage_group
from openbai.cli.usage import usage_group, usage_show
from openbai.cli.workspace import experiment_group, workspace_group


@click.group(cls=AzGroup, context_settings={"help_option_names": ["-h", "--help"]})
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


cli.add_command(config_group)
cli.add_command(workspace_group)
cli.add_command(experiment_group)
cli.add_command(cluster_group)
cli.add_command(job_group)
cli.add_command(file_server_group)
cli.add_command(usage_group)
hidden_alias(cli, usage_show, "list-usages")  # az batchai list-usages, the later name
cli.add_command(storage_group)
cli.add_command(serve)
cli.add_command(token_group)


def main() -> None:
    cli(prog_name="bai")

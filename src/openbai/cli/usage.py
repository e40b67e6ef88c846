"""``bai usage show -l LOCATION``: clusters and nodes in use in a location, with limits."""

from __future__ import annotations

import click

from openbai.cli.common import client, handle_errors
from openbai.cli.output import Columns, emit, output_options

USAGE_COLUMNS: Columns = [
    ("Value", "name.localizedValue"),
    ("Usage", "currentValue"),
    ("Limit", "limit"),
]


@click.group("usage")
def usage_group() -> None:
    """What this installation uses (clusters, nodes) against Batch AI's default limits."""


@usage_group.command("show")
@click.option("-l", "--location", required=True, help="Location of the workspaces, e.g. local.")
@output_options
@handle_errors
def usage_show(location: str, output: str, query: str | None) -> None:
    """Show the usages in a location."""
    emit(client().list_usages(location), output=output, query=query, columns=USAGE_COLUMNS)

"""``bai config show``: this installation's data directory, subscription id and defaults."""

from __future__ import annotations

import click

from openbai.cli.common import handle_errors
from openbai.cli.output import emit, output_options
from openbai.settings import Settings


@click.group("config")
def config_group() -> None:
    """This installation's settings."""


@config_group.command("show")
@output_options
@handle_errors
def config_show(output: str, query: str | None) -> None:
    """Show the data directory, the subscription id (for SDK clients) and the defaults."""
    settings = Settings.load()
    emit(
        {
            "home": str(settings.home),
            "subscriptionId": settings.subscription_id,
            "resourceGroup": settings.resource_group,
            "location": settings.location,
            "database": settings.db_url.split("://", 1)[0],
            "containerRuntime": settings.container_runtime,
        },
        output=output,
        query=query,
    )

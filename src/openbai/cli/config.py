"""``bai config show`` and ``bai config set``: this installation's data directory, subscription
id, defaults and database."""

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


@config_group.command("set")
@click.option(
    "--database",
    required=True,
    metavar="URL",
    help="Where this installation keeps its state, for the server, the dispatcher and the"
    " CLI alike: postgresql://USER:PASSWORD@HOST[:PORT]/DB for a shared server, or '' for"
    " the SQLite file in the data directory (the default). OPENBAI_DATABASE_URL overrides it.",
)
@handle_errors
def config_set(database: str) -> None:
    """Change this installation's settings (kept in config.json, readable by its owner only).

    The new database starts empty: it gets the schema on first use; nothing is copied."""
    from openbai.settings import configure_database, database_url

    settings = Settings.load()
    if database:
        check_reachable(database_url(database, "--database"))
    configure_database(settings.home, database, "--database")
    click.echo(f"database: {Settings.load().db_url.split('://', 1)[0]}", err=True)


def check_reachable(url: str) -> None:
    """Open the database (and give it the schema) before keeping it: a wrong host or password
    shows here, and the installation keeps the database it had."""
    from sqlalchemy.exc import SQLAlchemyError

    from openbai.errors import SpecError
    from openbai.store.database import open_database

    try:
        open_database(url).dispose()
    except SQLAlchemyError as exc:
        # the driver's own message names the host and the reason, never the password
        reason = str(getattr(exc, "orig", None) or type(exc).__name__).strip().splitlines()[0]
        raise SpecError(
            f"--database: cannot use that database: {reason}", target="--database"
        ) from None

"""``bai audit list``: the audit log of ``bai serve`` (every mutating API call and web action),
read from this machine's store, or through ``--server`` (an owner's token for every
workspace)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from openbai.cli.common import CliContext, handle_errors
from openbai.cli.output import emit, output_options
from openbai.errors import SpecError
from openbai.settings import Settings

COLUMNS = [
    ("Time", "time"),
    ("Token", "token"),
    ("Action", "action"),
    ("Resource", "resource"),
    ("Result", "result"),
    ("Status", "status"),
]


@click.group("audit")
def audit_group() -> None:
    """Who did what: mutating calls to `bai serve`, with their results."""


def parse_since(value: str) -> datetime:
    """A lifetime ago (``1h``, ``30d``, ``PT90M``) or a time (``2030-01-31T12:00:00Z``; UTC
    when it names no zone)."""
    from openbai.services.tokens import parse_lifetime
    from openbai.store.models import utcnow

    try:
        return utcnow() - parse_lifetime(value, field="--since")
    except SpecError:
        pass
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise SpecError(
            f"--since: {value!r} is neither a time (2030-01-31T12:00:00Z) nor a lifetime"
            " (30d, 12h, 90m, PT1H)",
            target="--since",
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@audit_group.command("list")
@click.option("--token", "token_name", default=None, help="Only calls made with this token.")
@click.option("--action", default=None, help="Only this action (job.terminate, ...).")
@click.option("--resource", default=None, help="Only resources whose id contains this.")
@click.option("--since", default=None, help="Only entries since a time, or a lifetime ago (1h).")
@output_options
@click.pass_context
@handle_errors
def audit_list(
    ctx: click.Context,
    token_name: str | None,
    action: str | None,
    resource: str | None,
    since: str | None,
    output: str,
    query: str | None,
) -> None:
    """List audit entries, oldest first."""
    when = parse_since(since) if since is not None else None
    context = ctx.find_object(CliContext)
    assert context is not None
    if context.server:
        rows = _remote(context, token_name, action, resource, when)
    else:
        rows = _embedded(token_name, action, resource, when)
    emit(rows, output=output, query=query, columns=COLUMNS)


def _embedded(
    token: str | None, action: str | None, resource: str | None, since: datetime | None
) -> list[dict[str, Any]]:
    from openbai.http.views import audit_entry_view
    from openbai.installation import App
    from openbai.services import audit

    app = App.open(Settings.load())
    try:
        where = audit.AuditFilter(token=token, action=action, resource=resource, since=since)
        return [audit_entry_view(e) for e in audit.list_entries(app, where)]
    finally:
        app.close()


def _remote(
    context: CliContext,
    token: str | None,
    action: str | None,
    resource: str | None,
    since: datetime | None,
) -> list[dict[str, Any]]:
    from openbai.cli.remote import RemoteClient

    client = context.client
    assert isinstance(client, RemoteClient)
    params = {"token": token, "action": action, "resource": resource}
    if since is not None:
        params["since"] = since.isoformat()
    page = client.request(
        "GET", "/openbai/audit", params={k: v for k, v in params.items() if v is not None}
    ).json()
    rows: list[dict[str, Any]] = list(page["value"])
    while page.get("nextLink"):
        page = client.request("GET", page["nextLink"]).json()
        rows += page["value"]
    return rows

"""``bai serve`` (the REST server with the dispatcher in-process) and ``bai token``.

Both work on this machine's installation (``$OPENBAI_HOME``), never through ``--server``:
tokens are made where the server runs, and handed to its users.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING, Any

import click

from openbai.cli.common import handle_errors
from openbai.cli.output import Columns, emit, output_options
from openbai.errors import ConflictError, SpecError
from openbai.settings import Settings

if TYPE_CHECKING:
    from openbai.installation import App

TOKEN_COLUMNS: Columns = [
    ("Name", "name"),
    ("Role", "role"),
    ("Workspaces", lambda row: ", ".join(row["workspaces"]) or "(all)"),
    ("Expires", "expiryTime"),
    ("Created", "creationTime"),
]


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="warning",
    show_default=True,
)
@click.option(
    "--public-url",
    envvar="OPENBAI_PUBLIC_URL",
    default=None,
    help="URL clients reach the server at (behind a proxy), for the links it hands out;"
    " default: the address each request reached.",
)
@click.option(
    "--forwarded-allow-ips",
    envvar="OPENBAI_FORWARDED_ALLOW_IPS",
    default=None,
    metavar="IPS",
    help="Comma-separated addresses (or networks, or '*') of the reverse proxies whose"
    " X-Forwarded-For and X-Forwarded-Proto headers are believed; default: nobody's.",
)
@click.option(
    "--database",
    default=None,
    metavar="URL",
    help="The store for this run (postgresql://USER:PASSWORD@HOST/DB or sqlite:///PATH);"
    " default: the installation's (bai config set --database).",
)
@click.option(
    "--workers",
    envvar="OPENBAI_WORKERS",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Processes answering requests (one core each); the dispatcher runs in the first.",
)
@handle_errors
def serve(
    host: str,
    port: int,
    log_level: str,
    public_url: str | None,
    forwarded_allow_ips: str | None,
    database: str | None,
    workers: int,
) -> None:
    """Serve the Batch AI REST API (2018-05-01) and run jobs, until Ctrl-C or SIGTERM.

    Every mutating call is also logged to stderr as a JSON line (the audit log)."""
    from openbai import server

    _log_audit_to_stderr()
    listener = _listen(host, port)  # before anything starts: a busy port is a plain error
    port = listener.getsockname()[1]  # the one the system chose for --port 0
    if database:
        from openbai.cli.config import check_reachable
        from openbai.settings import database_url

        url = database_url(database, "--database")
        check_reachable(url)  # a wrong host or password: exit code 2, before anything starts
        os.environ["OPENBAI_DATABASE_URL"] = url  # for the settings below and the workers
    settings = Settings.load()
    if public_url:
        from openbai.api.urls import check_public_url

        check_public_url(public_url)  # a bad one is exit code 2 before anything starts

    def ready() -> None:
        click.echo(
            f"openbai serving http://{host}:{port} (subscription {settings.subscription_id});"
            " create a token with 'bai token create -n NAME'",
            err=True,
        )

    server.serve(
        settings,
        listener,
        log_level=log_level,
        public_url=public_url or None,
        forwarded_allow_ips=forwarded_allow_ips or None,
        workers=workers,
        on_ready=ready,
    )


def _log_audit_to_stderr() -> None:
    """The audit log's JSON lines go to stderr whatever --log-level says: it is a record,
    not a diagnostic."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    audit_log = logging.getLogger("openbai.audit")
    audit_log.addHandler(handler)
    audit_log.setLevel(logging.INFO)
    audit_log.propagate = False


def _listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port``; ``ConflictError`` (exit 4) when it is taken."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except OSError as exc:
        raise SpecError(f"--host {host}: {exc.strerror or exc}", target="--host") from exc
    try:
        listener = socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ConflictError(f"cannot listen on {host}:{port}: {reason}", target="--port") from exc
    # asyncio turns Nagle off only on sockets made with proto=IPPROTO_TCP, which create_server's
    # are not: without this, a response's body waits ~40 ms for the ACK of its headers on every
    # kept-alive connection (and every chunk of a stream for the one before). Accepted
    # connections inherit the option from the listener.
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return listener


@click.group("token")
def token_group() -> None:
    """API tokens for `bai serve` (kept on this machine, stored hashed)."""


def _app() -> App:
    from openbai.installation import App

    return App.open(Settings.load())


@token_group.command("create")
@click.option("-n", "--name", required=True, help="Name of the token (who or what uses it).")
@click.option(
    "--role",
    type=click.Choice(["reader", "contributor", "owner"]),
    default="owner",
    show_default=True,
    help="reader: show, list, read files; contributor: also create, update, delete, terminate;"
    " owner: also storage accounts and the audit log.",
)
@click.option(
    "--expires-in",
    default=None,
    help="Lifetime: 30d, 12h, 90m or ISO 8601 (P30D, PT12H). Default: until deleted.",
)
@click.option(
    "-w",
    "--workspace",
    "workspaces",
    multiple=True,
    metavar="[RG/]NAME",
    help="Limit the token to this workspace (repeatable; RG: the default resource group).",
)
@handle_errors
def token_create(name: str, role: str, expires_in: str | None, workspaces: tuple[str, ...]) -> None:
    """Create a token and print it: this is the only time it is shown."""
    from openbai.services import tokens

    lifetime = (
        None if expires_in is None else tokens.parse_lifetime(expires_in, field="--expires-in")
    )
    app = _app()
    try:
        scope = tokens.workspace_scope(app, workspaces, field="--workspace")
        _, token = tokens.create_token(
            app, name, role=tokens.Role(role), lifetime=lifetime, workspaces=scope
        )
    finally:
        app.close()
    click.echo(token)


@token_group.command("list")
@output_options
@handle_errors
def token_list(output: str, query: str | None) -> None:
    """List tokens: name, role, workspaces, expiry (the tokens themselves are not kept)."""
    from openbai.services import sessions, tokens
    from openbai.spec.times import iso

    app = _app()
    try:
        rows: list[dict[str, Any]] = [
            {
                "name": t.name,
                "role": t.role.value,
                "workspaces": list(t.workspaces),
                "expiryTime": iso(t.expires),
                "creationTime": iso(t.created),
                "sessions": sessions.count_sessions(app, t.name),
            }
            for t in tokens.list_tokens(app)
        ]
    finally:
        app.close()
    emit(rows, output=output, query=query, columns=TOKEN_COLUMNS)


@token_group.command("delete")
@click.option("-n", "--name", required=True)
@handle_errors
def token_delete(name: str) -> None:
    """Delete a token: requests with it are refused and its web sessions end, at once."""
    from openbai.services import tokens

    app = _app()
    try:
        tokens.delete_token(app, name)
    finally:
        app.close()

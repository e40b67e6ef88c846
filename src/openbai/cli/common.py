"""What every command shares: the client, the resource group, and error handling.

Errors become an ``ERROR:`` line on stderr and an exit code: 2 for bad input (as click's
usage errors), 3 not found, 4 conflict, 5 authentication, 1 anything else (a full disk too:
one line, never a traceback).
"""

from __future__ import annotations

import copy
import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from openbai.errors import AuthError, ConflictError, NotFoundError, OpenBaiError, SpecError
from openbai.settings import Settings

if TYPE_CHECKING:  # the interface only: a command imports its client when it runs
    from openbai.cli.protocol import Client

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES: list[tuple[type[OpenBaiError], int]] = [
    (SpecError, 2),
    (NotFoundError, 3),
    (ConflictError, 4),
    (AuthError, 5),
]


@dataclass
class CliContext:
    server: str | None = None
    token: str | None = None
    _client: Client | None = field(default=None, repr=False)

    @property
    def client(self) -> Client:
        if self._client is None:
            if self.server:
                from openbai.cli.remote import RemoteClient

                if not self.token:
                    raise AuthError(
                        f"the server {self.server} needs a token: set BAI_TOKEN (or --token) to"
                        " one made with 'bai token create -n NAME' where it runs"
                    )
                self._client = RemoteClient(self.server, self.token)
            else:
                # the services and the store are imported only by commands that work in-process
                from openbai.cli.client import EmbeddedClient

                self._client = EmbeddedClient(Settings.load())
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def client() -> Client:
    ctx = click.get_current_context().find_object(CliContext)
    assert ctx is not None
    return ctx.client


def resource_group(value: str | None) -> str:
    return value or os.environ.get("BAI_RESOURCE_GROUP") or client().default_resource_group


def group_option(f: F) -> F:
    return click.option(
        "-g",
        "--resource-group",
        "resource_group_name",
        default=None,
        help="Resource group (default: the configured one, 'default').",
    )(f)


def workspace_option(f: F) -> F:
    return click.option("-w", "--workspace", required=True, help="Name of the workspace.")(f)


def experiment_option(f: F) -> F:
    return click.option("-e", "--experiment", required=True, help="Name of the experiment.")(f)


def yes_option(f: F) -> F:
    return click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")(f)


def no_wait_option(f: F) -> F:
    return click.option(
        "--no-wait", is_flag=True, help="Do not wait for the long-running operation to finish."
    )(f)


def hidden_alias(group: click.Group, command: click.Command, name: str) -> None:
    """An old name of a command (``job list-files``), kept for scripts, left out of --help."""
    alias = copy.copy(command)
    alias.hidden = True
    alias.name = name
    group.add_command(alias, name)


def confirm(yes: bool, question: str) -> None:
    if not yes and not click.confirm(question, default=False, err=True):
        raise click.Abort()


def _home() -> Path:
    return Path(os.environ.get("OPENBAI_HOME") or Path.home() / ".openbai").expanduser()


def _database_full(exc: BaseException) -> bool:
    """SQLite's answer on a full disk (sqlite3's, or SQLAlchemy's wrapping of it), told apart
    without importing SQLAlchemy: "database or disk is full", or a "disk I/O error" (what it
    says when it cannot even open its journal) while the installation's disk has no room."""
    seen: BaseException | None = exc
    for _ in range(10):  # the exception and what it was raised from
        if seen is None:
            return False
        if "database or disk is full" in str(seen):
            return True
        if "disk I/O error" in str(seen):
            try:
                return os.statvfs(_home()).f_bavail == 0
            except OSError:
                return False
        seen = seen.__cause__ or seen.__context__
    return False


def handle_errors(f: F) -> F:
    """Turn openbai errors into a message and an exit code at the edge."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except OpenBaiError as exc:
            code = next((c for cls, c in EXIT_CODES if isinstance(exc, cls)), 1)
            click.echo(f"ERROR: {exc.message}", err=True)
            sys.exit(code)
        except OSError as exc:  # this machine's files (a download's destination, a -f file)
            where = f": {exc.filename}" if exc.filename else ""
            click.echo(f"ERROR: {exc.strerror or exc}{where}", err=True)
            sys.exit(1)
        except Exception as exc:
            if not _database_full(exc):
                raise
            click.echo(
                "ERROR: no space left on device: the installation's database cannot be written"
                f" ({_home()})",
                err=True,
            )
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


_JSON_TYPES = {type(None): "null", bool: "a boolean", int: "a number", float: "a number",
               str: "a string", list: "an array", dict: "an object"}  # fmt: skip


def json_object(parent: dict[str, Any], key: str, *, field: str) -> dict[str, Any]:
    """``parent[key]``, an object of a job/cluster file that flags add to (made when absent or
    null, which the file's schema takes as absent); a SpecError naming ``field`` where the
    file has something else there (an array, a string)."""
    found: dict[str, Any] = _json_part(parent, key, dict, field)
    return found


def json_array(parent: dict[str, Any], key: str, *, field: str) -> list[Any]:
    """``parent[key]``, an array that flags append to, as :func:`json_object`."""
    found: list[Any] = _json_part(parent, key, list, field)
    return found


def _json_part(parent: dict[str, Any], key: str, kind: type, field: str) -> Any:
    if parent.get(key) is None:
        parent[key] = kind()
    value = parent[key]
    if not isinstance(value, kind):
        got = _JSON_TYPES.get(type(value), type(value).__name__)
        wanted = "object" if kind is dict else "array"
        raise SpecError(f"{field} must be a JSON {wanted}, got {got}", target=field)
    return value

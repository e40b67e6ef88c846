"""Printing results like az: ``-o json|jsonc|table|tsv|none`` and ``--query`` (JMESPath).

Resources are printed flattened, as az printed the SDK's models: the ARM envelope's
``properties`` are lifted to the top level and ``resourceGroup`` is added.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # jmespath, rich and pydantic load only for --query, tables, job.json
    from pydantic import BaseModel

FORMATS = ("json", "jsonc", "table", "tsv", "none")
#: a table: (column title, JMESPath into a row, or a function of the row)
Columns = Sequence[tuple[str, "str | Callable[[Any], Any]"]]


def flatten(resource: dict[str, Any]) -> dict[str, Any]:
    flat = {k: v for k, v in resource.items() if k != "properties"}
    flat.update(resource.get("properties") or {})
    rid = str(resource.get("id", ""))
    parts = rid.split("/")
    if "resourceGroups" in parts:
        flat["resourceGroup"] = parts[parts.index("resourceGroups") + 1]
    return flat


def emit(data: Any, *, output: str, query: str | None, columns: Columns | None = None) -> None:
    if query:
        import jmespath
        from jmespath.exceptions import JMESPathError

        try:
            data = jmespath.search(query, data)
        except JMESPathError as exc:
            raise click.UsageError(f"--query: {exc}") from exc
    if output == "none":
        return
    if output == "json":
        click.echo(json.dumps(data, indent=2, default=str))
    elif output == "jsonc":
        from rich.console import Console

        Console(highlight=True).print_json(json.dumps(data, default=str))
    elif output == "tsv":
        for row in _rows(data):
            click.echo(_tsv_row(row))
    else:
        _table(data, columns if not query else None)


def _rows(data: Any) -> list[Any]:
    if data is None:
        return []
    return data if isinstance(data, list) else [data]


def _tsv_row(row: Any) -> str:
    """A row as az's tsv prints it: a list's items (``--query "[].[name, id]"``) or an
    object's values are the columns; within a row, a list is its length and an object is
    empty, so that every row has the same columns."""
    if isinstance(row, bool):
        return str(row).lower()
    if not isinstance(row, (dict, list)):
        return _cell(row)
    values = row.values() if isinstance(row, dict) else row
    return "\t".join(
        str(len(v)) if isinstance(v, list) else "" if isinstance(v, dict) else _cell(v)
        for v in values
    )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


def _table(data: Any, columns: Columns | None) -> None:
    from openbai.cli.table import plain_table

    rows = _rows(data)
    if columns is None:
        keys: list[str] = []
        for row in rows:
            if isinstance(row, dict):
                keys += [
                    k for k, v in row.items() if k not in keys and not isinstance(v, (dict, list))
                ]
        columns = [(k[:1].upper() + k[1:], k) for k in keys] or [("Result", "@")]
    titles = [title for title, _ in columns]
    cells = [
        [_cell(path(row) if callable(path) else _search(path, row)) for _, path in columns]
        for row in rows
    ]
    plain = plain_table(titles, cells)
    if plain is not None:
        sys.stdout.write(plain)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for title in titles:
        table.add_column(title)
    for row_cells in cells:
        table.add_row(*row_cells)
    Console(width=max(100, Console().width), soft_wrap=True).print(table)


#: a column path that is only field names (``nodeStateCounts.idleNodeCount``): JMESPath's
#: answer, without loading jmespath
_FIELDS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def _search(path: str, row: Any) -> Any:
    if not _FIELDS.fullmatch(path):
        import jmespath

        return jmespath.search(path, row)
    value = row
    for name in path.split("."):
        value = value.get(name) if isinstance(value, dict) else None
    return value


def output_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``-o/--output`` and ``--query`` on a command, as on every az command."""
    f = click.option("--query", default=None, help="JMESPath query applied to the result.")(f)
    f = click.option(
        "-o",
        "--output",
        type=click.Choice(FORMATS),
        default="json",
        show_default=True,
        help="Output format.",
    )(f)
    return f


def silent_output_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``-o/--output`` and ``--query`` taken and ignored by a command that prints no result (a
    delete, a wait): az takes them on every command, and scripts pass ``-o none`` to all."""
    hint = "Taken as az does; this command prints no result."
    f = click.option("--query", default=None, expose_value=False, help=hint)(f)
    f = click.option("-o", "--output", type=click.Choice(FORMATS), expose_value=False, help=hint)(f)
    return f


def warn_unknown_keys(model: type[BaseModel], body: dict[str, Any], what: str) -> None:
    """A warning for each key of a job.json/cluster.json that is ignored (a typo, a key of
    an older API version), so that ``nodeCont`` does not go unnoticed."""
    from openbai.spec.base import unknown_keys

    for where in unknown_keys(model, body):
        err(f"WARNING: {where} is not {what}; it is ignored")


def err(message: str) -> None:
    click.echo(message, err=True)


def stdout_bytes(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()

"""``--ids``: a resource's ARM id in place of its ``-g``, ``-w``, ``-e`` and name flags.

az (from 2.0.38) let every command on one resource take the resource's id, as printed in
``id`` by show and list. Here a command declares which flag each segment of the id fills
(``{"resourceGroups": "-g", "workspaces": "-w", "jobs": "-n"}``); the id is turned into those
flags before the command's own parsing, so the command itself knows nothing about ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

PROVIDER = ("providers", "Microsoft.BatchAI")
#: how each kind of resource is written in its id, for error messages
SHAPES = {
    "workspaces": "workspaces/W",
    "experiments": "workspaces/W/experiments/E",
    "jobs": "workspaces/W/experiments/E/jobs/J",
    "clusters": "workspaces/W/clusters/C",
    "fileServers": "workspaces/W/fileServers/F",
}


class IdsCommand(click.Command):
    """A click command that also takes ``--ids ID`` (``flags``: id segment → option)."""

    def __init__(self, *args: Any, flags: Mapping[str, str], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.flags = dict(flags)
        self.params.append(
            click.Option(
                ["--ids"],
                expose_value=False,
                help="The resource's ARM id, in place of "
                + ", ".join(sorted(set(self.flags.values())))
                + ".",
            )
        )

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        rest, resource_id = _take_ids(args)
        if resource_id is not None:
            given = [a for a in rest if a.split("=", 1)[0] in self._flag_names()]
            if given:
                raise click.UsageError(f"give --ids or {given[0]}, not both", ctx=ctx)
            rest = [*flags_of(resource_id, self.flags), *rest]
            _require_this_subscription(ctx, resource_id.strip("/").split("/")[1])
        return super().parse_args(ctx, rest)

    def _flag_names(self) -> set[str]:
        """Every spelling of the options an id fills (``-n``, ``--name``, ``--job`` …)."""
        names: set[str] = set()
        for param in self.params:
            if isinstance(param, click.Option) and set(param.opts) & set(self.flags.values()):
                names.update(param.opts)
        return names


def _require_this_subscription(ctx: click.Context, subscription: str) -> None:
    """An id of another subscription names nothing here: not found (exit 3), as ARM says."""
    from openbai.cli.common import client

    ours = client().subscription_id
    if subscription.lower() != ours.lower():
        click.echo(
            f"ERROR: the subscription {subscription} is not this installation's ({ours})", err=True
        )
        ctx.exit(3)


def _take_ids(args: list[str]) -> tuple[list[str], str | None]:
    rest: list[str] = []
    found: list[str] = []
    items = iter(args)
    for arg in items:
        if arg == "--ids":
            found.append(next(items, ""))
        elif arg.startswith("--ids="):
            found.append(arg.split("=", 1)[1])
        else:
            rest.append(arg)
    if len(found) > 1:
        raise click.UsageError("--ids: give one id")
    return rest, (found[0] if found else None)


def flags_of(resource_id: str, flags: Mapping[str, str]) -> list[str]:
    """``/subscriptions/S/resourceGroups/G/providers/Microsoft.BatchAI/workspaces/W/...``
    → ``["-g", G, "-w", W, ...]`` for the segments ``flags`` names, which must be all."""
    parts = resource_id.strip("/").split("/")
    kind = next(reversed(list(flags)))
    shape = f"/subscriptions/S/resourceGroups/G/providers/Microsoft.BatchAI/{SHAPES[kind]}"
    # ARM ids compare without case: the segments' names are matched as the flags spell them
    spelled = {key.lower(): key for key in (*flags, "subscriptions", "providers")}
    pairs = [
        (spelled.get(key.lower(), key), value)
        for key, value in zip(parts[::2], parts[1::2], strict=False)
    ]
    values = {key: value for key, value in pairs if key not in ("subscriptions", "providers")}
    provider = [value.lower() for key, value in pairs if key == "providers"]
    valid = (
        len(parts) % 2 == 0
        and pairs[:1] != []
        and pairs[0][0] == "subscriptions"
        and provider == [PROVIDER[1].lower()]
        and list(values) == list(flags)
        and all(values.values())
    )
    if not valid:
        raise click.BadParameter(f"expected {shape}, got {resource_id!r}", param_hint="--ids")
    return [item for key, value in values.items() for item in (flags[key], value)]


def _resource(*pairs: tuple[str, str]) -> dict[str, str]:
    return {"resourceGroups": "-g", **dict(pairs)}


#: which flag each segment of an id fills, per kind of command
WORKSPACE = _resource(("workspaces", "-n"))
EXPERIMENT = _resource(("workspaces", "-w"), ("experiments", "-n"))
CLUSTER = _resource(("workspaces", "-w"), ("clusters", "-n"))
CLUSTER_PART = _resource(("workspaces", "-w"), ("clusters", "-c"))  # cluster node/file …
JOB = _resource(("workspaces", "-w"), ("experiments", "-e"), ("jobs", "-n"))
JOB_PART = _resource(("workspaces", "-w"), ("experiments", "-e"), ("jobs", "-j"))  # job file …
FILE_SERVER = _resource(("workspaces", "-w"), ("fileServers", "-n"))

"""``--nfs NAME-or-ID`` and ``--nfs-mount-path`` of ``cluster create`` and ``job create``: a
file server of the workspace mounted on every node, appended to the file's mounts as az did."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from openbai.cli.common import json_array

F = TypeVar("F", bound=Callable[..., Any])


def nfs_options(f: F) -> F:
    f = click.option("--nfs-mount-path", default="nfs", show_default=True)(f)
    return click.option(
        "--nfs",
        "nfs",
        default=None,
        help="File server (name in the workspace, or its ARM id) to mount at --nfs-mount-path.",
    )(f)


def add_nfs_mount(
    mount_volumes: dict[str, Any],
    nfs: str | None,
    mount_path: str,
    *,
    subscription_id: str,
    resource_group: str,
    workspace: str,
    field: str,
) -> None:
    """Append the file server ``nfs`` to ``mountVolumes.fileServers`` (nothing without one)."""
    if not nfs:
        return
    server_id = (
        nfs
        if nfs.startswith("/subscriptions/")
        else f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.BatchAI/workspaces/{workspace}/fileServers/{nfs}"
    )
    json_array(mount_volumes, "fileServers", field=f"{field}.fileServers").append(
        {"fileServer": {"id": server_id}, "relativeMountPath": mount_path}
    )

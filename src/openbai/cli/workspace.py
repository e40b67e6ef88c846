"""``bai workspace`` and ``bai experiment``."""

from __future__ import annotations

import click

from openbai.cli import ids
from openbai.cli.common import (
    client,
    confirm,
    group_option,
    handle_errors,
    no_wait_option,
    resource_group,
    workspace_option,
    yes_option,
)
from openbai.cli.ids import IdsCommand
from openbai.cli.output import Columns, emit, flatten, output_options, silent_output_options

WORKSPACE_COLUMNS: Columns = [
    ("Name", "name"),
    ("Resource Group", "resourceGroup"),
    ("Location", "location"),
    ("State", "provisioningState"),
]
EXPERIMENT_COLUMNS: Columns = [
    ("Name", "name"),
    ("Resource Group", "resourceGroup"),
    ("Workspace", lambda row: str(row.get("id", "")).split("/")[8]),
    ("State", "provisioningState"),
]


@click.group("workspace")
def workspace_group() -> None:
    """Workspaces: the top-level container of clusters and experiments."""


@workspace_group.command("create")
@click.option("-n", "--name", "--workspace", "name", required=True, help="Name of the workspace.")
@click.option("-l", "--location", default=None, help="Location (default: 'local').")
@click.option("--tags", multiple=True, help="KEY=VALUE tags.")
@group_option
@output_options
@handle_errors
def workspace_create(
    name: str,
    location: str | None,
    tags: tuple[str, ...],
    resource_group_name: str | None,
    output: str,
    query: str | None,
) -> None:
    """Create a workspace."""
    tag_map = {key: value for key, _, value in (t.partition("=") for t in tags)}
    emit(
        flatten(
            client().create_workspace(resource_group(resource_group_name), name, location, tag_map)
        ),
        output=output,
        query=query,
        columns=WORKSPACE_COLUMNS,
    )


@workspace_group.command("show", cls=IdsCommand, flags=ids.WORKSPACE)
@click.option("-n", "--name", "--workspace", "name", required=True)
@group_option
@output_options
@handle_errors
def workspace_show(
    name: str, resource_group_name: str | None, output: str, query: str | None
) -> None:
    """Show a workspace."""
    emit(
        flatten(client().get_workspace(resource_group(resource_group_name), name)),
        output=output,
        query=query,
        columns=WORKSPACE_COLUMNS,
    )


@workspace_group.command("list")
@group_option
@output_options
@handle_errors
def workspace_list(resource_group_name: str | None, output: str, query: str | None) -> None:
    """List workspaces (of one resource group with -g)."""
    emit(
        [flatten(w) for w in client().list_workspaces(resource_group_name)],
        output=output,
        query=query,
        columns=WORKSPACE_COLUMNS,
    )


@workspace_group.command("delete", cls=IdsCommand, flags=ids.WORKSPACE)
@click.option("-n", "--name", "--workspace", "name", required=True)
@group_option
@yes_option
@no_wait_option
@silent_output_options
@handle_errors
def workspace_delete(name: str, resource_group_name: str | None, yes: bool, no_wait: bool) -> None:
    """Delete a workspace with its clusters, experiments and jobs (files in storage stay)."""
    confirm(yes, f"Delete workspace {name} with all its clusters, experiments and jobs?")
    client().delete_workspace(resource_group(resource_group_name), name, wait=not no_wait)


@click.group("experiment")
def experiment_group() -> None:
    """Experiments: groups of jobs in a workspace."""


@experiment_group.command("create")
@click.option("-n", "--name", "--experiment", "name", required=True, help="Name of the experiment.")
@workspace_option
@group_option
@output_options
@handle_errors
def experiment_create(
    name: str, workspace: str, resource_group_name: str | None, output: str, query: str | None
) -> None:
    """Create an experiment."""
    emit(
        flatten(client().create_experiment(resource_group(resource_group_name), workspace, name)),
        output=output,
        query=query,
        columns=EXPERIMENT_COLUMNS,
    )


@experiment_group.command("show", cls=IdsCommand, flags=ids.EXPERIMENT)
@click.option("-n", "--name", "--experiment", "name", required=True)
@workspace_option
@group_option
@output_options
@handle_errors
def experiment_show(
    name: str, workspace: str, resource_group_name: str | None, output: str, query: str | None
) -> None:
    """Show an experiment."""
    emit(
        flatten(client().get_experiment(resource_group(resource_group_name), workspace, name)),
        output=output,
        query=query,
        columns=EXPERIMENT_COLUMNS,
    )


@experiment_group.command("list")
@workspace_option
@group_option
@output_options
@handle_errors
def experiment_list(
    workspace: str, resource_group_name: str | None, output: str, query: str | None
) -> None:
    """List the experiments of a workspace."""
    emit(
        [
            flatten(e)
            for e in client().list_experiments(resource_group(resource_group_name), workspace)
        ],
        output=output,
        query=query,
        columns=EXPERIMENT_COLUMNS,
    )


@experiment_group.command("delete", cls=IdsCommand, flags=ids.EXPERIMENT)
@click.option("-n", "--name", "--experiment", "name", required=True)
@workspace_option
@group_option
@yes_option
@no_wait_option
@silent_output_options
@handle_errors
def experiment_delete(
    name: str, workspace: str, resource_group_name: str | None, yes: bool, no_wait: bool
) -> None:
    """Delete an experiment and its jobs (running ones are terminated; files stay)."""
    confirm(yes, f"Delete experiment {name} and all its jobs?")
    client().delete_experiment(
        resource_group(resource_group_name), workspace, name, wait=not no_wait
    )

"""``bai file-server``: create (from an nfs.json and/or flags), show, list, delete.

Flags follow ``az batchai file-server create``; flags given on the command line override the
config file. Each file server is an NFS server (nfs-ganesha) on the installation's machine,
exporting ``$OPENBAI_HOME/file-servers/RG/WS/NAME/data``; no VM is provisioned.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

import click

from openbai.cli import ids
from openbai.cli.common import (
    client,
    confirm,
    group_option,
    handle_errors,
    json_object,
    no_wait_option,
    resource_group,
    workspace_option,
    yes_option,
)
from openbai.cli.ids import IdsCommand
from openbai.cli.output import Columns, emit, err, flatten, output_options, silent_output_options
from openbai.errors import SpecError


def _disks(row: Any) -> str:
    disks = row.get("dataDisks") or {}
    if not disks:
        return ""
    return f"{disks.get('diskCount')} x {disks.get('diskSizeInGB')} Gb"


FILE_SERVER_COLUMNS: Columns = [
    ("Name", "name"),
    ("Resource Group", "resourceGroup"),
    ("Size", "vmSize"),
    ("Disks", _disks),
    ("Public IP", "mountSettings.fileServerPublicIP"),
    ("Internal IP", "mountSettings.fileServerInternalIP"),
    ("Type", "mountSettings.fileServerType"),
    ("Mount Point", "mountSettings.mountPoint"),
]


@click.group("file-server")
def file_server_group() -> None:
    """File servers: an NFS server (nfs-ganesha) each, on this machine; no VM is provisioned."""


def _name_option(f: Any) -> Any:
    return click.option(
        "-n", "--name", "--file-server", "name", required=True, help="Name of the file server."
    )(f)


@file_server_group.command("create")
@_name_option
@workspace_option
@group_option
@click.option(
    "-f",
    "--config-file",
    type=click.Path(dir_okay=False),
    help="An nfs.json (Batch AI FileServerCreateParameters).",
)
@click.option("-s", "--vm-size", default=None, help="VM size (recorded).")
@click.option("--disk-count", type=int, default=None, help="Number of data disks.")
@click.option("--disk-size", type=int, default=None, help="Size of each data disk in GB.")
@click.option("--caching-type", type=click.Choice(["none", "readonly", "readwrite"]), default=None)
@click.option("--storage-sku", type=click.Choice(["Premium_LRS", "Standard_LRS"]), default=None)
@click.option("-u", "--user-name", default=None, help="Admin user (default: you).")
@click.option("-p", "--password", default=None, help="Admin password (never shown again).")
@click.option("-k", "--ssh-key", default=None, help="SSH public key, or the path of one.")
@click.option("--generate-ssh-keys", is_flag=True, help="Accepted for az compatibility.")
@click.option("--subnet", default=None, help="ARM id of a subnet (recorded).")
@no_wait_option
@output_options
@handle_errors
def file_server_create(
    name: str,
    workspace: str,
    resource_group_name: str | None,
    config_file: str | None,
    vm_size: str | None,
    disk_count: int | None,
    disk_size: int | None,
    caching_type: str | None,
    storage_sku: str | None,
    user_name: str | None,
    password: str | None,
    ssh_key: str | None,
    generate_ssh_keys: bool,
    subnet: str | None,
    no_wait: bool,
    output: str,
    query: str | None,
) -> None:
    """Create a file server."""
    from openbai.spec.base import load_json_file  # pydantic: only for the commands that parse

    body: dict[str, Any] = (
        load_json_file(Path(config_file), field="--config-file") if config_file else {}
    )
    props = json_object(body, "properties", field="properties")
    disks = json_object(props, "dataDisks", field="properties.dataDisks")
    for key, value in (
        ("diskCount", disk_count),
        ("diskSizeInGB", disk_size),
        ("cachingType", caching_type),
        ("storageAccountType", storage_sku),
    ):
        if value is not None:
            disks[key] = value
    for key, flag in (
        ("diskSizeInGB", "--disk-size"),
        ("diskCount", "--disk-count"),
        ("storageAccountType", "--storage-sku"),
    ):
        if key not in disks:
            raise SpecError(
                f"{flag}: give it, or properties.dataDisks.{key} in --config-file", target=flag
            )
    if vm_size:
        props["vmSize"] = vm_size
    if "vmSize" not in props:
        raise SpecError(
            "--vm-size: give it, or properties.vmSize in --config-file", target="--vm-size"
        )
    if subnet:
        props["subnet"] = {"id": subnet}
    ssh = json_object(props, "sshConfiguration", field="properties.sshConfiguration")
    if ssh.get("userAccountSettings") is None:
        ssh["userAccountSettings"] = {"adminUserName": getpass.getuser()}
    account = json_object(
        ssh, "userAccountSettings", field="properties.sshConfiguration.userAccountSettings"
    )
    if user_name:
        account["adminUserName"] = user_name
    if password:
        account["adminUserPassword"] = password
    if ssh_key:
        key_path = Path(ssh_key).expanduser()
        account["adminUserSshPublicKey"] = (
            key_path.read_text().strip() if key_path.is_file() else ssh_key
        )
    created = client().create_file_server(
        resource_group(resource_group_name), workspace, name, body
    )
    if not no_wait:  # as az: --no-wait prints nothing
        emit(flatten(created), output=output, query=query, columns=FILE_SERVER_COLUMNS)


@file_server_group.command("show", cls=IdsCommand, flags=ids.FILE_SERVER)
@_name_option
@workspace_option
@group_option
@output_options
@handle_errors
def file_server_show(
    name: str, workspace: str, resource_group_name: str | None, output: str, query: str | None
) -> None:
    """Show a file server (its password is never shown); fails naming why when its NFS server
    cannot be started (its port taken by another program, say)."""
    found = client().get_file_server(resource_group(resource_group_name), workspace, name)
    emit(flatten(found), output=output, query=query, columns=FILE_SERVER_COLUMNS)


@file_server_group.command("list")
@workspace_option
@group_option
@output_options
@handle_errors
def file_server_list(
    workspace: str, resource_group_name: str | None, output: str, query: str | None
) -> None:
    """List the file servers of a workspace (one that cannot be started is listed as failed)."""
    found = [
        flatten(f)
        for f in client().list_file_servers(resource_group(resource_group_name), workspace)
    ]
    for f in found:
        # az's table has no state column: say it, without spoiling stdout for scripts
        if f.get("provisioningState") == "failed":
            err(
                f"WARNING: file server {f['name']} cannot be started"
                f" ('bai file-server show -w {workspace} -n {f['name']}' says why)"
            )
    emit(found, output=output, query=query, columns=FILE_SERVER_COLUMNS)


@file_server_group.command("delete", cls=IdsCommand, flags=ids.FILE_SERVER)
@_name_option
@workspace_option
@group_option
@click.option(
    "--delete-data",
    is_flag=True,
    help="Delete the files of its export too (openbai's; by default they are kept).",
)
@yes_option
@no_wait_option
@silent_output_options
@handle_errors
def file_server_delete(
    name: str,
    workspace: str,
    resource_group_name: str | None,
    delete_data: bool,
    yes: bool,
    no_wait: bool,
) -> None:
    """Delete a file server: its NFS server stops at once. The files of its export are kept,
    under the installation: $OPENBAI_HOME/file-servers/RG/WS/NAME/data, unless --delete-data."""
    what = "and its files" if delete_data else "(its files are kept)"
    confirm(yes, f"Delete file server {name} {what}?")
    client().delete_file_server(
        resource_group(resource_group_name), workspace, name, delete_data=delete_data
    )

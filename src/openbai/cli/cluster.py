"""``bai cluster``: create (from a cluster.json and/or flags), show, list, resize, delete,
its nodes (``node list``) and its setup task's output files (``file list``).

Flags follow ``az batchai cluster create``; as in az, flags given on the command line
override the config file, and mounts given by flags are added to the file's.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from openbai.cli import ids
from openbai.cli.common import (
    client,
    confirm,
    group_option,
    handle_errors,
    hidden_alias,
    json_array,
    json_object,
    no_wait_option,
    resource_group,
    workspace_option,
    yes_option,
)
from openbai.cli.ids import IdsCommand
from openbai.cli.nfs_option import add_nfs_mount, nfs_options
from openbai.cli.node_exec import exec_options, first_node, run_on_node
from openbai.cli.output import (
    Columns,
    emit,
    err,
    flatten,
    output_options,
    silent_output_options,
    warn_unknown_keys,
)
from openbai.errors import SpecError
from openbai.spec.placeholders import fill_storage_placeholders
from openbai.storage.base import clean_path

IMAGE_ALIASES = {
    "UbuntuLTS": {
        "publisher": "Canonical",
        "offer": "UbuntuServer",
        "sku": "16.04-LTS",
        "version": "latest",
    },
    "UbuntuDSVM": {
        "publisher": "microsoft-ads",
        "offer": "linux-data-science-vm-ubuntu",
        "sku": "linuxdsvmubuntu",
        "version": "latest",
    },
}

if TYPE_CHECKING:
    from openbai.cli.protocol import Client


def _workspace(row: Any) -> str:
    return str(row.get("id", "")).split("/")[8]


def _cluster_state(row: Any) -> Any:
    return "deleting" if row.get("provisioningState") == "deleting" else row.get("allocationState")


CLUSTER_COLUMNS: Columns = [
    ("Name", "name"),
    ("Resource Group", "resourceGroup"),
    ("Workspace", _workspace),
    ("VM Size", "vmSize"),
    ("State", _cluster_state),
    ("Idle", "nodeStateCounts.idleNodeCount"),
    ("Running", "nodeStateCounts.runningNodeCount"),
    ("Preparing", "nodeStateCounts.preparingNodeCount"),
    ("Leaving", "nodeStateCounts.leavingNodeCount"),
    ("GPUs", "gpuCount"),
    ("Unusable", "nodeStateCounts.unusableNodeCount"),
]
#: ``cluster node list`` and ``job node list``, as az showed remote-login information
NODE_COLUMNS: Columns = [
    ("ID", "nodeId"),
    ("IP", "ipAddress"),
    ("SSH Port", "port"),
    ("GPUs", lambda row: ",".join(str(g) for g in row.get("gpus") or [])),
]
SETUP_FILE_COLUMNS: Columns = [
    ("Name", "name"),
    ("Is directory", lambda row: "yes" if row.get("is_directory") else "no"),
    ("Size", lambda row: "" if row.get("size") is None else row["size"]),
]


def scale_settings(
    target: int | None, minimum: int | None, maximum: int | None
) -> dict[str, Any] | None:
    """az's rules: only -t → manual; --min == --max → manual; else auto-scale."""
    if minimum is None and maximum is None:
        return None if target is None else {"manual": {"targetNodeCount": target}}
    if minimum is None or maximum is None:
        raise SpecError("give both --min and --max, or neither", target="--min/--max")
    if minimum == maximum:
        return {"manual": {"targetNodeCount": target if target is not None else minimum}}
    return {
        "autoScale": {
            "minimumNodeCount": minimum,
            "maximumNodeCount": maximum,
            "initialNodeCount": target or 0,
        }
    }


def image_reference(image: str) -> dict[str, Any]:
    if image in IMAGE_ALIASES:
        return IMAGE_ALIASES[image]
    parts = image.split(":")
    if len(parts) != 4:
        raise SpecError(
            f"--image: use UbuntuLTS, UbuntuDSVM or publisher:offer:sku:version, got {image!r}",
            target="--image",
        )
    return dict(zip(("publisher", "offer", "sku", "version"), parts, strict=True))


@click.group("cluster")
def cluster_group() -> None:
    """Clusters: the nodes jobs run on (local slots or a Slurm partition)."""


@cluster_group.command("create")
@click.option("-n", "--name", "--cluster", "name", required=True, help="Name of the cluster.")
@workspace_option
@group_option
@click.option(
    "-f",
    "--config-file",
    "-c",
    "--config",  # the pre-2.0.38 names
    "config_file",
    type=click.Path(dir_okay=False),
    help="A cluster.json (Batch AI schema 2018-05-01).",
)
@click.option("-s", "--vm-size", default=None, help="VM size (recorded; default STANDARD_NC6).")
@click.option(
    "-i", "--image", default=None, help="UbuntuLTS, UbuntuDSVM or publisher:offer:sku:version."
)
@click.option("--custom-image", default=None, help="ARM id of a VM image based on -i (recorded).")
@click.option("--vm-priority", type=click.Choice(["dedicated", "lowpriority"]), default=None)
@click.option("-t", "--target", type=int, default=None, help="Number of nodes (manual scale).")
@click.option("--nodes", type=int, default=None, help="Fixed number of nodes (same as -t).")
@click.option("--min", "minimum", type=int, default=None, help="Auto-scale minimum.")
@click.option("--max", "maximum", type=int, default=None, help="Auto-scale maximum.")
@click.option("-u", "--user-name", default=None)
@click.option("-p", "--password", default=None)
@click.option("-k", "--ssh-key", default=None)
@click.option("--generate-ssh-keys", is_flag=True, help="Accepted for az compatibility.")
@click.option(
    "--use-auto-storage",
    is_flag=True,
    help="Create and mount an auto-storage share (autoafs) and container (autobfs).",
)
@click.option("--afs-name", default=None, help="File share of --storage-account-name to mount.")
@click.option("--afs-mount-path", default="afs", show_default=True)
@click.option(
    "--bfs-name",
    "--container-name",
    "bfs_name",
    default=None,
    help="Blob container of --storage-account-name to mount.",
)
@click.option(
    "--bfs-mount-path", "--container-mount-path", "bfs_mount_path", default="bfs", show_default=True
)
@nfs_options
@click.option("--storage-account-name", default=None, envvar="AZURE_BATCHAI_STORAGE_ACCOUNT")
@click.option(
    "--storage-account-key",
    default=None,
    envvar="AZURE_BATCHAI_STORAGE_KEY",
    help="Key of --storage-account-name for the mounts given by flags (never shown).",
)
@click.option("--subnet", default=None, help="ARM id of a subnet (recorded).")
@click.option(
    "--setup-task", default=None, help="Command line run on each node before its first job."
)
@click.option("--setup-task-output", default=None, help="Where the setup task's output goes.")
@click.option(
    "--executor",
    type=click.Choice(["local", "slurm"]),
    default=None,
    help="Where jobs run (default local).",
)
@click.option("--partition", default=None, help="Slurm partition (with --executor slurm).")
@click.option(
    "--require-containers",
    is_flag=True,
    default=None,
    help="Refuse jobs that cannot run in their container.",
)
@click.option(
    "--container-runtime",
    type=click.Choice(["podman", "docker", "apptainer"]),
    default=None,
    help="Runtime for jobs' images (default: podman, else docker, whichever is installed).",
)
@click.option(
    "--allow-host-runs",
    is_flag=True,
    default=None,
    help="Run a job with containerSettings on the host when no container runtime is installed.",
)
@click.option(
    "--gpus-per-node",
    type=int,
    default=None,
    help="GPUs of each node (default: the VM size's, e.g. 2 for STANDARD_NC12).",
)
@click.option(
    "--no-sandbox",
    "sandbox",
    flag_value=False,
    default=None,
    help="Run tasks unsealed: as the server's user, seeing the whole machine.",
)
@click.option("--cpus-per-node", type=float, default=None, help="CPUs a node slot may use.")
@click.option("--memory-per-node", default=None, help="Memory a node slot may use (4G, 512M).")
@click.option("--processes-per-node", type=int, default=None, help="Processes a slot may have.")
@output_options
@handle_errors
def cluster_create(
    name: str,
    workspace: str,
    resource_group_name: str | None,
    config_file: str | None,
    vm_size: str | None,
    image: str | None,
    custom_image: str | None,
    vm_priority: str | None,
    target: int | None,
    nodes: int | None,
    minimum: int | None,
    maximum: int | None,
    user_name: str | None,
    password: str | None,
    ssh_key: str | None,
    generate_ssh_keys: bool,
    use_auto_storage: bool,
    afs_name: str | None,
    afs_mount_path: str,
    bfs_name: str | None,
    bfs_mount_path: str,
    nfs: str | None,
    nfs_mount_path: str,
    storage_account_name: str | None,
    storage_account_key: str | None,
    subnet: str | None,
    setup_task: str | None,
    setup_task_output: str | None,
    executor: str | None,
    partition: str | None,
    require_containers: bool | None,
    allow_host_runs: bool | None,
    gpus_per_node: int | None,
    container_runtime: str | None,
    sandbox: bool | None,
    cpus_per_node: float | None,
    memory_per_node: str | None,
    processes_per_node: int | None,
    output: str,
    query: str | None,
) -> None:
    """Create a cluster."""
    from openbai.spec.base import load_json_file  # pydantic: only for the commands that parse
    from openbai.spec.cluster import ClusterCreateParameters

    body: dict[str, Any] = (
        _fill_placeholders(
            load_json_file(Path(config_file), field="--config-file"),
            storage_account_name,
            storage_account_key,
        )
        if config_file
        else {}
    )
    warn_unknown_keys(ClusterCreateParameters, body, "a Batch AI cluster property")
    props = json_object(body, "properties", field="properties")
    if nodes is not None and target is not None and nodes != target:
        raise SpecError("give --nodes or -t, not both with different values", target="--nodes")
    scale = scale_settings(nodes if nodes is not None else target, minimum, maximum)
    if scale is not None:
        props["scaleSettings"] = scale
    elif "scaleSettings" not in props:
        props["scaleSettings"] = {"manual": {"targetNodeCount": 1}}
    if vm_size:
        props["vmSize"] = vm_size
    props.setdefault("vmSize", "STANDARD_NC6")
    if vm_priority:
        props["vmPriority"] = vm_priority
    if image:
        props["virtualMachineConfiguration"] = {"imageReference": image_reference(image)}
    if custom_image:
        reference = (props.get("virtualMachineConfiguration") or {}).get("imageReference")
        if not reference:
            raise SpecError(
                "--custom-image needs -i: the image it is based on (publisher:offer:sku:version)",
                target="--image",
            )
        reference["virtualMachineImageId"] = custom_image
    if subnet:
        props["subnet"] = {"id": subnet}
    if props.get("userAccountSettings") is None:
        props["userAccountSettings"] = {"adminUserName": getpass.getuser()}
    account = json_object(props, "userAccountSettings", field="properties.userAccountSettings")
    if user_name:
        account["adminUserName"] = user_name
    if password:
        account["adminUserPassword"] = password
    if ssh_key:
        key_path = Path(ssh_key).expanduser()
        account["adminUserSshPublicKey"] = (
            key_path.read_text().strip() if key_path.is_file() else ssh_key
        )
    node_setup = json_object(props, "nodeSetup", field="properties.nodeSetup")
    _add_mounts(
        node_setup,
        storage_account_name,
        afs_name,
        afs_mount_path,
        bfs_name,
        bfs_mount_path,
        storage_account_key,
    )
    if nfs:
        rg = resource_group(resource_group_name)
        add_nfs_mount(
            json_object(node_setup, "mountVolumes", field="properties.nodeSetup.mountVolumes"),
            nfs,
            nfs_mount_path,
            subscription_id=client().subscription_id,
            resource_group=rg,
            workspace=workspace,
            field="properties.nodeSetup.mountVolumes",
        )
    if setup_task:
        if not setup_task_output:
            raise SpecError("--setup-task needs --setup-task-output", target="--setup-task-output")
        node_setup["setupTask"] = {
            "commandLine": setup_task,
            "stdOutErrPathPrefix": setup_task_output,
        }
    extension = json_object(props, "openbai", field="properties.openbai")
    for key, value in (
        ("executor", executor),
        ("partition", partition),
        ("requireContainers", require_containers),
        ("containerRuntime", container_runtime),
        ("sandbox", sandbox),
        ("cpusPerNode", cpus_per_node),
        ("allowHostRuns", allow_host_runs),
        ("gpusPerNode", gpus_per_node),
        ("memoryPerNode", memory_per_node),
        ("processesPerNode", processes_per_node),
    ):
        if value is not None:
            extension[key] = value
    result = client().create_cluster(
        resource_group(resource_group_name),
        workspace,
        name,
        body,
        use_auto_storage=use_auto_storage,
    )
    created = result.get("properties", {})
    from openbai.spec.cluster import vm_size_gpus  # pydantic: not for the other commands

    table = vm_size_gpus(str(created.get("vmSize", "")))
    given = (created.get("openbai") or {}).get("gpusPerNode") or 0
    if given < table:
        err(
            f"WARNING: {created.get('vmSize')} has {table} GPU(s) per node, but there is no GPU "
            f"to give: the nodes get {given} (OPENBAI_GPUS names the GPUs of this machine)"
        )
    emit(flatten(result), output=output, query=query, columns=CLUSTER_COLUMNS)


def _fill_placeholders(
    body: dict[str, Any], account: str | None, key: str | None
) -> dict[str, Any]:
    """``<AZURE_BATCHAI_STORAGE_ACCOUNT>`` and ``<AZURE_BATCHAI_STORAGE_KEY>`` in a cluster.json
    filled from --storage-account-name/--storage-account-key, as az did (and job create does)."""
    return fill_storage_placeholders(
        body, account, key, what="cluster file", target="properties.nodeSetup.mountVolumes"
    )


def _add_mounts(
    node_setup: dict[str, Any],
    account: str | None,
    afs: str | None,
    afs_path: str,
    bfs: str | None,
    bfs_path: str,
    key: str | None,
) -> None:
    """Mounts from flags are appended to the file's (as az did)."""
    credentials = {"credentials": {"accountKey": key}} if key else {}
    if (afs or bfs) and not account:
        raise SpecError(
            "--afs-name/--bfs-name need --storage-account-name", target="--storage-account-name"
        )
    if not (afs or bfs):
        return
    field = "properties.nodeSetup.mountVolumes"
    volumes = json_object(node_setup, "mountVolumes", field=field)
    if afs:
        json_array(volumes, "azureFileShares", field=f"{field}.azureFileShares").append(
            {
                "accountName": account,
                "azureFileUrl": f"https://{account}.file.core.windows.net/{afs}",
                "relativeMountPath": afs_path,
                **credentials,
            }
        )
    if bfs:
        json_array(volumes, "azureBlobFileSystems", field=f"{field}.azureBlobFileSystems").append(
            {
                "accountName": account,
                "containerName": bfs,
                "relativeMountPath": bfs_path,
                **credentials,
            }
        )


@cluster_group.command("show", cls=IdsCommand, flags=ids.CLUSTER)
@click.option("-n", "--name", "--cluster", "name", required=True)
@workspace_option
@group_option
@output_options
@handle_errors
def cluster_show(
    name: str, workspace: str, resource_group_name: str | None, output: str, query: str | None
) -> None:
    """Show a cluster with its node state counts."""
    emit(
        flatten(client().get_cluster(resource_group(resource_group_name), workspace, name)),
        output=output,
        query=query,
        columns=CLUSTER_COLUMNS,
    )


@cluster_group.command("list")
@workspace_option
@group_option
@output_options
@handle_errors
def cluster_list(
    workspace: str, resource_group_name: str | None, output: str, query: str | None
) -> None:
    """List the clusters of a workspace."""
    emit(
        [
            flatten(c)
            for c in client().list_clusters(resource_group(resource_group_name), workspace)
        ],
        output=output,
        query=query,
        columns=CLUSTER_COLUMNS,
    )


@cluster_group.command("resize", cls=IdsCommand, flags=ids.CLUSTER)
@click.option("-n", "--name", "--cluster", "name", required=True)
@workspace_option
@group_option
@click.option("-t", "--target", type=int, required=True, help="New number of nodes.")
@output_options
@handle_errors
def cluster_resize(
    name: str,
    workspace: str,
    resource_group_name: str | None,
    target: int,
    output: str,
    query: str | None,
) -> None:
    """Resize a cluster to a fixed number of nodes."""
    body = {"properties": {"scaleSettings": {"manual": {"targetNodeCount": target}}}}
    emit(
        flatten(
            client().update_cluster(resource_group(resource_group_name), workspace, name, body)
        ),
        output=output,
        query=query,
        columns=CLUSTER_COLUMNS,
    )


@cluster_group.command("auto-scale", cls=IdsCommand, flags=ids.CLUSTER)
@click.option("-n", "--name", "--cluster", "name", required=True)
@workspace_option
@group_option
@click.option("--min", "minimum", type=int, required=True)
@click.option("--max", "maximum", type=int, required=True)
@output_options
@handle_errors
def cluster_auto_scale(
    name: str,
    workspace: str,
    resource_group_name: str | None,
    minimum: int,
    maximum: int,
    output: str,
    query: str | None,
) -> None:
    """Let a cluster scale between --min and --max nodes."""
    body = {
        "properties": {
            "scaleSettings": {
                "autoScale": {"minimumNodeCount": minimum, "maximumNodeCount": maximum}
            }
        }
    }
    emit(
        flatten(
            client().update_cluster(resource_group(resource_group_name), workspace, name, body)
        ),
        output=output,
        query=query,
        columns=CLUSTER_COLUMNS,
    )


@cluster_group.command("delete", cls=IdsCommand, flags=ids.CLUSTER)
@click.option("-n", "--name", "--cluster", "name", required=True)
@workspace_option
@group_option
@yes_option
@no_wait_option
@silent_output_options
@handle_errors
def cluster_delete(
    name: str, workspace: str, resource_group_name: str | None, yes: bool, no_wait: bool
) -> None:
    """Delete a cluster (it must have no queued or running jobs)."""
    confirm(yes, f"Delete cluster {name}?")
    client().delete_cluster(resource_group(resource_group_name), workspace, name, wait=not no_wait)


def _cluster_option(f: Any) -> Any:
    # -n: the cluster's flag in the pre-2.0.38 commands (cluster list-nodes, list-files)
    return click.option(
        "-c", "--cluster", "-n", "--name", "cluster", required=True, help="Name of the cluster."
    )(f)


@cluster_group.group("node")
def cluster_node_group() -> None:
    """The nodes of a cluster."""


@cluster_node_group.command("list", cls=IdsCommand, flags=ids.CLUSTER_PART)
@_cluster_option
@workspace_option
@group_option
@output_options
@handle_errors
def cluster_node_list(
    cluster: str, workspace: str, resource_group_name: str | None, output: str, query: str | None
) -> None:
    """List the cluster's nodes: id, the host they run on, and its SSH port.

    A local cluster's nodes are slots on the machine openbai runs on; a Slurm cluster's are
    the partition's hosts."""
    nodes = client().list_cluster_nodes(resource_group(resource_group_name), workspace, cluster)
    emit(nodes, output=output, query=query, columns=NODE_COLUMNS)


@cluster_group.group("file")
def cluster_file_group() -> None:
    """The output files of the cluster's setup task."""


@cluster_file_group.command("list", cls=IdsCommand, flags=ids.CLUSTER_PART)
@_cluster_option
@workspace_option
@group_option
@click.option(
    "-p", "--path", default=".", show_default=True, help="Folder below the setup task's output."
)
@click.option(
    "--expiry",
    type=click.IntRange(5, 600),
    default=60,
    show_default=True,
    help="Minutes the download links stay valid (links of a server).",
)
@output_options
@handle_errors
def cluster_file_list(
    cluster: str,
    workspace: str,
    resource_group_name: str | None,
    path: str,
    expiry: int,
    output: str,
    query: str | None,
) -> None:
    """List the setup task's output files (stdout-<node>.txt, stderr-<node>.txt), one level."""
    clean_path(path, field="--path")
    files = client().list_cluster_files(
        resource_group(resource_group_name), workspace, cluster, path=path, expiry=expiry
    )
    emit(files, output=output, query=query, columns=SETUP_FILE_COLUMNS)


@cluster_node_group.command("exec", cls=IdsCommand, flags=ids.CLUSTER_PART)
@click.option("-c", "--cluster", "cluster", required=True, help="Name of the cluster.")
@workspace_option
@group_option
@exec_options
@handle_errors
def cluster_node_exec(
    cluster: str,
    workspace: str,
    resource_group_name: str | None,
    node_id: str | None,
    command: str | None,
    timeout: int,
    address: tuple[str, ...],
    password: str | None,
    ssh_private_key: str | None,
) -> None:
    """Run a command on a node of the cluster (no SSH: in the node's sandbox, or through
    srun on Slurm); exits with the command's exit code."""
    from openbai.services import nodes

    rg = resource_group(resource_group_name)

    def remote(c: Client, line: str) -> dict[str, Any]:
        node = first_node(c.list_cluster_nodes(rg, workspace, cluster), node_id, cluster)
        return c.exec_on_cluster_node(rg, workspace, cluster, node, line, timeout=timeout)

    run_on_node(
        lambda app: nodes.cluster_node_command(app, rg, workspace, cluster, node_id, command),
        address,
        remote=remote,
        command_line=command,
        timeout=timeout,
    )


hidden_alias(cluster_group, cluster_node_list, "list-nodes")
hidden_alias(cluster_group, cluster_file_list, "list-files")

"""``bai job``: create from a job.json, show, list, wait, terminate, delete, its files and
its nodes."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from openbai.cli import ids
from openbai.cli.common import (
    client,
    confirm,
    experiment_option,
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
from openbai.cli.node_exec import exec_options, run_on_node
from openbai.cli.outage import Outage
from openbai.cli.output import (
    Columns,
    emit,
    err,
    flatten,
    output_options,
    silent_output_options,
    stdout_bytes,
    warn_unknown_keys,
)
from openbai.errors import OpenBaiError, SpecError
from openbai.storage.base import blob_path
from openbai.vocabulary import FINAL_STATES, ExecutionState, ProvisioningState

if TYPE_CHECKING:
    from openbai.cli.protocol import Client


def _cluster_part(index: int) -> Any:
    return lambda row: str((row.get("cluster") or {}).get("id", "")).split("/")[index]


JOB_COLUMNS: Columns = [
    ("Name", "name"),
    ("Cluster", _cluster_part(-1)),
    ("Cluster RG", _cluster_part(4)),
    ("Cluster Workspace", _cluster_part(8)),
    ("Tool", "toolType"),
    ("Nodes", "nodeCount"),
    ("State", lambda row: _job_state(row)),
    ("Exit code", "executionInfo.exitCode"),
]
FILE_COLUMNS: Columns = [
    ("Name", "name"),
    ("Type", "fileType"),
    ("Size", lambda row: "" if row.get("fileType") == "directory" else row.get("contentLength")),
    ("Modified", "lastModified"),
]
#: minutes a download link stays valid, as az's default
DEFAULT_EXPIRY = 60


def _job_state(row: Any) -> Any:
    deleting = row.get("provisioningState") == ProvisioningState.DELETING
    return ProvisioningState.DELETING.value if deleting else row.get("executionState")


@click.group("job")
def job_group() -> None:
    """Jobs: run a Batch AI job.json on a cluster and get at its output."""


@job_group.command("create")
@click.option("-n", "--name", "--job", "name", required=True, help="Name of the job.")
@click.option("-c", "--cluster", "cluster", default=None, help="Cluster name, or its ARM id.")
@click.option(
    "-r",
    "--cluster-name",  # the pre-2.0.38 name: with it, -c is the job file (`-r c1 -c job.json`)
    "old_cluster",
    default=None,
    hidden=True,
)
@click.option(
    "-f",
    "--config-file",
    "--config",  # the pre-2.0.38 name
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="A Batch AI job.json.  [required]",
)
@workspace_option
@experiment_option
@group_option
@click.option(
    "--storage-account-name",
    default=None,
    envvar="AZURE_BATCHAI_STORAGE_ACCOUNT",
    help="Fills <AZURE_BATCHAI_STORAGE_ACCOUNT> and flag mounts.",
)
@click.option(
    "--storage-account-key",
    default=None,
    envvar="AZURE_BATCHAI_STORAGE_KEY",
    help="Fills <AZURE_BATCHAI_STORAGE_KEY>.",
)
@click.option("--afs-name", default=None, help="File share to mount at --afs-mount-path.")
@click.option("--afs-mount-path", default="afs", show_default=True)
@click.option(
    "--bfs-name",
    "--container-name",
    "bfs_name",
    default=None,
    help="Blob container to mount at --bfs-mount-path.",
)
@click.option(
    "--bfs-mount-path", "--container-mount-path", "bfs_mount_path", default="bfs", show_default=True
)
@nfs_options
@output_options
@handle_errors
def job_create(
    name: str,
    cluster: str | None,
    old_cluster: str | None,
    config_file: str | None,
    workspace: str,
    experiment: str,
    resource_group_name: str | None,
    storage_account_name: str | None,
    storage_account_key: str | None,
    afs_name: str | None,
    afs_mount_path: str,
    bfs_name: str | None,
    bfs_mount_path: str,
    nfs: str | None,
    nfs_mount_path: str,
    output: str,
    query: str | None,
) -> None:
    """Create (submit) a job from a job.json."""
    if old_cluster is not None:  # az before 2.0.38: -r/--cluster-name and -c/--config
        if cluster is not None and config_file is not None:
            raise click.UsageError("-c is the job file when -r/--cluster-name is given")
        cluster, config_file = old_cluster, config_file or cluster
    if config_file is None:
        raise click.UsageError("Missing option '-f' / '--config-file'.")
    from openbai.spec.base import load_json_file  # pydantic: only for the commands that parse
    from openbai.spec.job import JobCreateParameters

    body = load_json_file(Path(config_file), field="--config-file")
    warn_unknown_keys(JobCreateParameters, body, "a Batch AI job property")
    if (afs_name or bfs_name) and not storage_account_name:
        raise SpecError(
            "--afs-name/--bfs-name need --storage-account-name", target="--storage-account-name"
        )
    field = "properties.mountVolumes"
    if afs_name or bfs_name:
        props = json_object(body, "properties", field="properties")
        volumes = json_object(props, "mountVolumes", field=field)
        if afs_name:
            json_array(volumes, "azureFileShares", field=f"{field}.azureFileShares").append(
                {
                    "azureFileUrl": f"https://{storage_account_name}.file.core.windows.net/{afs_name}",
                    "relativeMountPath": afs_mount_path,
                }
            )
        if bfs_name:
            json_array(
                volumes, "azureBlobFileSystems", field=f"{field}.azureBlobFileSystems"
            ).append(
                {
                    "accountName": storage_account_name,
                    "containerName": bfs_name,
                    "relativeMountPath": bfs_mount_path,
                }
            )
    if nfs:
        add_nfs_mount(
            json_object(
                json_object(body, "properties", field="properties"), "mountVolumes", field=field
            ),
            nfs,
            nfs_mount_path,
            subscription_id=client().subscription_id,
            resource_group=resource_group(resource_group_name),
            workspace=workspace,
            field=field,
        )
    from openbai.spec.placeholders import fill_storage_placeholders

    body = fill_storage_placeholders(
        body,
        storage_account_name,
        storage_account_key,
        what="job file",
        target="properties.mountVolumes",
    )
    result = client().create_job(
        resource_group(resource_group_name),
        workspace,
        experiment,
        name,
        body,
        cluster=cluster,
    )
    for warning in result.get("properties", {}).pop("warnings", None) or []:
        err(f"WARNING: {warning}")
    emit(flatten(result), output=output, query=query, columns=JOB_COLUMNS)


def _job_options(f: Any) -> Any:
    f = group_option(f)
    f = experiment_option(f)
    f = workspace_option(f)
    return click.option("-n", "--name", "--job", "name", required=True, help="Name of the job.")(f)


@job_group.command("show", cls=IdsCommand, flags=ids.JOB)
@_job_options
@output_options
@handle_errors
def job_show(
    name: str,
    workspace: str,
    experiment: str,
    resource_group_name: str | None,
    output: str,
    query: str | None,
) -> None:
    """Show a job: its spec (secrets left out), state and execution info."""
    emit(
        flatten(client().get_job(resource_group(resource_group_name), workspace, experiment, name)),
        output=output,
        query=query,
        columns=JOB_COLUMNS,
    )


@job_group.command("list")
@workspace_option
@experiment_option
@group_option
@output_options
@handle_errors
def job_list(
    workspace: str, experiment: str, resource_group_name: str | None, output: str, query: str | None
) -> None:
    """List the jobs of an experiment."""
    jobs = client().list_jobs(resource_group(resource_group_name), workspace, experiment)
    emit([flatten(j) for j in jobs], output=output, query=query, columns=JOB_COLUMNS)


@job_group.command("terminate", cls=IdsCommand, flags=ids.JOB)
@_job_options
@yes_option
@click.option("--no-wait", is_flag=True, help="Do not wait until the job has stopped.")
@silent_output_options
@handle_errors
def job_terminate(
    name: str,
    workspace: str,
    experiment: str,
    resource_group_name: str | None,
    yes: bool,
    no_wait: bool,
) -> None:
    """Terminate a job: its processes are stopped, the outputs written so far are kept."""
    confirm(yes, f"Terminate job {name}?")
    rg = resource_group(resource_group_name)
    client().terminate_job(rg, workspace, experiment, name)
    while (
        not no_wait
        and client().get_job(rg, workspace, experiment, name)["properties"]["executionState"]
        not in FINAL_STATES
    ):
        time.sleep(0.2)


@job_group.command("delete", cls=IdsCommand, flags=ids.JOB)
@_job_options
@yes_option
@no_wait_option
@silent_output_options
@handle_errors
def job_delete(
    name: str,
    workspace: str,
    experiment: str,
    resource_group_name: str | None,
    yes: bool,
    no_wait: bool,
) -> None:
    """Delete a job (terminated first if it runs); its files in storage stay."""
    confirm(yes, f"Delete job {name}?")
    client().delete_job(
        resource_group(resource_group_name), workspace, experiment, name, wait=not no_wait
    )


@job_group.command("wait", cls=IdsCommand, flags=ids.JOB)
@_job_options
@click.option(
    "--interval", type=float, default=1.0, show_default=True, help="Seconds between checks."
)
@silent_output_options
@handle_errors
def job_wait(
    name: str, workspace: str, experiment: str, resource_group_name: str | None, interval: float
) -> None:
    """Wait for a job to end; exit with its exit code."""
    rg = resource_group(resource_group_name)
    last = None
    jobs = client()
    outage = Outage(str(getattr(jobs, "server", "")))  # a remote one may restart meanwhile
    while True:
        try:
            props = jobs.get_job(rg, workspace, experiment, name)["properties"]
        except OpenBaiError as e:
            if e.code != "ServerUnreachable":
                raise
            outage.failed(e)
            continue
        outage.passed()
        state = props["executionState"]
        info = props.get("executionInfo") or {}
        if last is None:
            err(f"Job submitted at {props['creationTime']}")
        if state != last:
            if state == ExecutionState.RUNNING and info.get("startTime"):
                err(f"Job started execution at {info['startTime']}")
            err(f"Job state: {state}")
            last = state
        if state in FINAL_STATES:
            break
        time.sleep(interval)
    code = info.get("exitCode")
    if state == ExecutionState.SUCCEEDED:
        took = _duration(info.get("startTime"), info.get("endTime"))
        err(f"Job completed at {info.get('endTime')}; execution took {took}")
        sys.exit(0)
    err(f"Job failed with exit code {code} at {info.get('endTime')}")
    for error in info.get("errors") or []:
        err(f"  {error.get('code')}: {error.get('message')}")
        for detail in error.get("details") or []:
            err(f"    {detail.get('name')}: {detail.get('value')}")
    sys.exit(-1 if code is None else code)


def _duration(start: str | None, end: str | None) -> str:
    if not start or not end:
        return "unknown"
    return str(
        datetime.fromisoformat(end.replace("Z", "+00:00"))
        - datetime.fromisoformat(start.replace("Z", "+00:00"))
    )


@job_group.group("file")
def job_file_group() -> None:
    """A job's output files: list them, stream one while the job runs."""


def _job_ref_options(f: Any) -> Any:
    f = group_option(f)
    f = experiment_option(f)
    f = workspace_option(f)
    # -n: the job's flag in the pre-2.0.38 commands (job list-files, stream-file, list-nodes)
    return click.option("-j", "--job", "-n", "job", required=True, help="Name of the job.")(f)


def _file_options(f: Any) -> Any:
    f = click.option(
        "-p",
        "--path",
        default=".",
        show_default=True,
        help="Sub-directory of the output directory.",
    )(f)
    f = click.option(
        "-d",
        "--output-directory-id",
        "directory_id",
        default="stdouterr",
        show_default=True,
        help="stdouterr or an outputDirectories id.",
    )(f)
    return _job_ref_options(f)


@job_file_group.command("list", cls=IdsCommand, flags=ids.JOB_PART)
@_file_options
@click.option(
    "--expiry",
    type=click.IntRange(5, 600),
    default=DEFAULT_EXPIRY,
    show_default=True,
    help="Minutes the download links stay valid (links of a server).",
)
@output_options
@handle_errors
def job_file_list(
    job: str,
    workspace: str,
    experiment: str,
    resource_group_name: str | None,
    directory_id: str,
    path: str,
    expiry: int,
    output: str,
    query: str | None,
) -> None:
    """List a job's output files (one level)."""
    files = client().list_job_files(
        resource_group(resource_group_name),
        workspace,
        experiment,
        job,
        directory_id=directory_id,
        path=path,
        expiry=expiry,
    )
    emit(files, output=output, query=query, columns=FILE_COLUMNS)


@job_file_group.command("stream", cls=IdsCommand, flags=ids.JOB_PART)
@_file_options
@click.option("-f", "--file-name", required=True, help="The file to stream, e.g. stdout.txt.")
@handle_errors
def job_file_stream(
    job: str,
    workspace: str,
    experiment: str,
    resource_group_name: str | None,
    directory_id: str,
    path: str,
    file_name: str,
) -> None:
    """Print a file as the job writes it; stop when the job has ended and all of it is shown."""
    rg = resource_group(resource_group_name)
    c = client()
    # a name with folders ("logs/train.txt") is a file in a sub-directory of --path
    relative = "/".join(
        p
        for p in (
            blob_path(path, field="--path"),
            blob_path(file_name, field="--file-name", allow_root=False),
        )
        if p
    )
    path, _, file_name = relative.rpartition("/")
    if path.endswith("/"):  # x//y.txt: "/y.txt" in "x", as job file list shows it
        file_name = "/" * (len(path) - len(path.rstrip("/"))) + file_name
        path = path.rstrip("/")
    announced = False

    def listed() -> list[dict[str, Any]]:
        return list(
            c.list_job_files(
                rg,
                workspace,
                experiment,
                job,
                directory_id=directory_id,
                path=path,
                expiry=DEFAULT_EXPIRY,
            )
        )

    while not any(f["name"] == file_name and f["fileType"] == "file" for f in listed()):
        if (
            c.get_job(rg, workspace, experiment, job)["properties"]["executionState"]
            in FINAL_STATES
        ):
            # one more look: the file may have appeared just before the job ended
            if any(f["name"] == file_name for f in listed()):
                break
            err(f'The file "{file_name}" not found for the completed job.')
            sys.exit(3)
        if not announced:
            err(f'The file "{file_name}" not found. Waiting for the job to generate it.')
            announced = True
        time.sleep(0.5)
    try:
        for chunk in c.stream_job_file(
            rg, workspace, experiment, job, file_name, directory_id=directory_id, path=path
        ):
            stdout_bytes(chunk)
    except KeyboardInterrupt:
        sys.exit(130)


@job_group.group("node")
def job_node_group() -> None:
    """The nodes a job runs on."""


@job_node_group.command("list", cls=IdsCommand, flags=ids.JOB_PART)
@_job_ref_options
@output_options
@handle_errors
def job_node_list(
    job: str,
    workspace: str,
    experiment: str,
    resource_group_name: str | None,
    output: str,
    query: str | None,
) -> None:
    """List the nodes the job runs on now (none before it starts or after it ends)."""
    nodes = client().list_job_nodes(resource_group(resource_group_name), workspace, experiment, job)
    from openbai.cli.cluster import NODE_COLUMNS  # not imported by the other job commands

    emit(nodes, output=output, query=query, columns=NODE_COLUMNS)


@job_node_group.command("exec", cls=IdsCommand, flags=ids.JOB_PART)
@click.option("-j", "--job", "job", required=True, help="Name of the job.")
@experiment_option
@workspace_option
@group_option
@exec_options
@handle_errors
def job_node_exec(
    job: str,
    experiment: str,
    workspace: str,
    resource_group_name: str | None,
    node_id: str | None,
    command: str | None,
    timeout: int,
    address: tuple[str, ...],
    password: str | None,
    ssh_private_key: str | None,
) -> None:
    """Run a command on a node of a running job (no SSH: in the node's sandbox, or as a
    step of the job through srun --overlap on Slurm); exits with the command's exit code."""
    from openbai.services import nodes

    rg = resource_group(resource_group_name)

    def remote(c: Client, line: str) -> dict[str, Any]:
        if node_id is None:  # the server names a job on no node, as the local path does
            listed = c.list_job_nodes(rg, workspace, experiment, job)
            node = str(listed[0]["nodeId"]) if listed else "-"
        else:
            node = node_id
        return c.exec_on_job_node(rg, workspace, experiment, job, node, line, timeout=timeout)

    run_on_node(
        lambda app: nodes.job_node_command(app, rg, workspace, experiment, job, node_id, command),
        address,
        remote=remote,
        command_line=command,
        timeout=timeout,
    )


hidden_alias(job_group, job_file_list, "list-files")
hidden_alias(job_group, job_file_stream, "stream-file")
hidden_alias(job_group, job_node_list, "list-nodes")

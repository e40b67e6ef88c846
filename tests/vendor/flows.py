"""The vendor helpers' steps (helpers.py of azure-mgmt-batchai's tests), on openbai."""

from __future__ import annotations

from typing import Any

from azure.mgmt.batchai import models as m

from .conftest import ACCOUNT, EXP, MOUNT, OUTPUT_ID, RG, SHARE, WS, poll


def create_cluster(
    client: Any,
    name: str,
    nodes: int,
    setup: tuple[str, dict[str, str], dict[str, str]] | None = None,
    file_servers: list[Any] | None = None,
) -> Any:
    """A cluster with the account's share at ``azfiles`` (and a setup task, and file servers),
    as the vendor's."""
    task = None
    if setup is not None:
        command, env, secrets = setup
        task = m.SetupTask(
            command_line=command,
            environment_variables=[m.EnvironmentVariable(name=k, value=v) for k, v in env.items()],
            secrets=[
                m.EnvironmentVariableWithSecretValue(name=k, value=v) for k, v in secrets.items()
            ],
            std_out_err_path_prefix=f"$AZ_BATCHAI_MOUNT_ROOT/{MOUNT}",
        )
    client.workspaces.begin_create(RG, WS, m.WorkspaceCreateParameters(location="local")).result()
    share = m.AzureFileShareReference(
        account_name=ACCOUNT,
        azure_file_url=f"https://{ACCOUNT}.file.core.windows.net/{SHARE}",
        relative_mount_path=MOUNT,
        credentials=m.AzureStorageCredentialsInfo(account_key="not-needed-by-embedded"),
    )
    params = m.ClusterCreateParameters(
        vm_size="STANDARD_D1",
        scale_settings=m.ScaleSettings(manual=m.ManualScaleSettings(target_node_count=nodes)),
        node_setup=m.NodeSetup(
            mount_volumes=m.MountVolumes(azure_file_shares=[share], file_servers=file_servers),
            setup_task=task,
        ),
        user_account_settings=m.UserAccountSettings(
            admin_user_name="demoUser", admin_user_password="Dem0Pa$$w0rd"
        ),
        vm_priority="lowpriority",
    )
    return client.clusters.begin_create(RG, WS, name, params).result()


def create_custom_job(
    client: Any,
    cluster_id: str,
    name: str,
    nodes: int,
    command: str,
    preparation: str | None = None,
    container: Any = None,
) -> Any:
    client.experiments.begin_create(RG, WS, EXP).result()
    params = m.JobCreateParameters(
        cluster=m.ResourceId(id=cluster_id),
        node_count=nodes,
        std_out_err_path_prefix=f"$AZ_BATCHAI_MOUNT_ROOT/{MOUNT}",
        output_directories=[
            m.OutputDirectory(
                id=OUTPUT_ID, path_prefix=f"$AZ_BATCHAI_MOUNT_ROOT/{MOUNT}/", path_suffix="files"
            )
        ],
        input_directories=[
            m.InputDirectory(id="INPUT", path=f"$AZ_BATCHAI_MOUNT_ROOT/{MOUNT}/input")
        ],
        container_settings=container,
        job_preparation=m.JobPreparation(command_line=preparation) if preparation else None,
        custom_toolkit_settings=m.CustomToolkitSettings(command_line=command),
    )
    return client.jobs.begin_create(RG, WS, EXP, name, params).result()


def wait_for_nodes(client: Any, cluster: str, target: int) -> Any:
    """Until ``target`` nodes are idle and the cluster is not resizing; the cluster."""
    return poll(
        f"{target} idle nodes on {cluster}",
        lambda: client.clusters.get(RG, WS, cluster),
        lambda c: (
            c.node_state_counts.idle_node_count == target and c.allocation_state != "resizing"
        ),
    )


def wait_for_job(client: Any, name: str, *, started: bool = False) -> str:
    """Until the job has ended (or, with ``started``, has left the queue); its state."""
    ends = ("succeeded", "failed")
    job = poll(
        f"job {name} {'started' if started else 'ended'}",
        lambda: client.jobs.get(RG, WS, EXP, name),
        lambda j: j.execution_state != "queued" if started else j.execution_state in ends,
    )
    return str(job.execution_state)


def job_files(client: Any, name: str, directory: str, path: str = ".") -> dict[str, str | None]:
    """The files of one output directory with their contents (None for a folder)."""
    import httpx

    listed = client.jobs.list_output_files(
        RG, WS, EXP, name, m.JobsListOutputFilesOptions(outputdirectoryid=directory, directory=path)
    )
    return {
        f.name: None if f.file_type == "directory" else httpx.get(f.download_url).text
        for f in listed
    }


def remote_logins(client: Any, cluster: str) -> list[Any]:
    return list(client.clusters.list_remote_login_information(RG, WS, cluster))

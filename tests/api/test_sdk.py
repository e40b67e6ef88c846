"""The vendor's SDK (azure-mgmt-batchai 7.0.0), unchanged but for base_url and credential,
against a real ``bai serve``: the issue's snippet, end to end."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.core.pipeline.transport import HttpRequest, HttpResponse
from azure.mgmt.batchai import BatchAI
from azure.mgmt.batchai import models as m
from conftest import Bai
from job_files import upload_batch
from polling import wait_until

from .support import Server

TRAIN = b"""\
import os, sys
print("training in", os.path.basename(os.environ["AZ_BATCHAI_JOB_TEMP"]))
data = open(os.path.join(os.environ["AZ_BATCHAI_INPUT_DATA"], "numbers.txt")).read().split()
total = sum(int(x) for x in data)
print("total", total)
print("a warning", file=sys.stderr)
with open(os.path.join(os.environ["AZ_BATCHAI_OUTPUT_MODEL"], "model.txt"), "w") as f:
    f.write(f"model {total}\\n")
"""


class StaticBearerPolicy(SansIOHTTPPolicy[HttpRequest, HttpResponse]):
    def __init__(self, token: str) -> None:
        self._token = token

    def on_request(self, request: PipelineRequest[HttpRequest]) -> None:
        request.http_request.headers["Authorization"] = "Bearer " + self._token


def sdk(server: Server, token: str | None = None) -> Any:
    # Any: azure-mgmt-batchai 7.0.0 annotates its list operations as yielding the *ListResult
    # pages, not the items they do yield, so a typed client would refuse every correct use
    return BatchAI(
        # never asked for a token: azure-core sends one over https only, the policy sends it
        credential=object(),  # type: ignore[arg-type]
        subscription_id=server.subscription,
        base_url=server.url,
        authentication_policy=StaticBearerPolicy(token or server.token),
        polling_interval=1,
    )


@pytest.fixture
def storage(bai: Bai, tmp_path: Path) -> str:
    """An embedded account with a share (logs, outputs) and a container (script, data)."""
    bai("storage", "account", "create", "-n", "acct")
    bai("storage", "share", "create", "--account", "acct", "-n", "logs")
    bai("storage", "container", "create", "--account", "acct", "-n", "data")
    (tmp_path / "up" / "scripts").mkdir(parents=True)
    (tmp_path / "up" / "scripts" / "train.py").write_bytes(TRAIN)
    (tmp_path / "up" / "input").mkdir()
    (tmp_path / "up" / "input" / "numbers.txt").write_text("1 2 3 4\n")
    upload_batch(bai, tmp_path / "up")
    return "acct"


def test_issue_snippet_end_to_end(server: Server, storage: str) -> None:
    client = sdk(server)
    rg, ws, exp = "rg", "ws", "exp"
    workspace = client.workspaces.begin_create(
        rg, ws, m.WorkspaceCreateParameters(location="local")
    ).result()
    assert workspace.provisioning_state == "succeeded" and workspace.location == "local"
    assert client.experiments.begin_create(rg, ws, exp).result().name == exp
    cluster = client.clusters.begin_create(
        rg,
        ws,
        "c1",
        m.ClusterCreateParameters(
            vm_size="STANDARD_NC6",
            scale_settings=m.ScaleSettings(manual=m.ManualScaleSettings(target_node_count=2)),
        ),
    ).result()
    deadline = time.monotonic() + 60  # nodes are allocated in the background, as on Batch AI
    while cluster.allocation_state != "steady":
        assert time.monotonic() < deadline, cluster.allocation_state
        time.sleep(0.2)
        cluster = client.clusters.get(rg, ws, "c1")
    assert cluster.current_node_count == 2

    key = m.AzureStorageCredentialsInfo(account_key="not-needed-for-an-embedded-account")
    job = client.jobs.begin_create(
        rg,
        ws,
        exp,
        "j1",
        m.JobCreateParameters(
            cluster=m.ResourceId(id=cluster.id),
            node_count=1,
            mount_volumes=m.MountVolumes(
                azure_blob_file_systems=[
                    m.AzureBlobFileSystemReference(
                        account_name=storage,
                        container_name="data",
                        credentials=key,
                        relative_mount_path="bfs",
                    )
                ],
                azure_file_shares=[
                    m.AzureFileShareReference(
                        account_name=storage,
                        azure_file_url=f"https://{storage}.file.core.windows.net/logs",
                        credentials=key,
                        relative_mount_path="afs",
                    )
                ],
            ),
            input_directories=[
                m.InputDirectory(id="SCRIPT", path="$AZ_BATCHAI_JOB_MOUNT_ROOT/bfs/scripts"),
                m.InputDirectory(id="DATA", path="$AZ_BATCHAI_JOB_MOUNT_ROOT/bfs/input"),
            ],
            output_directories=[
                m.OutputDirectory(
                    id="MODEL", path_prefix="$AZ_BATCHAI_JOB_MOUNT_ROOT/afs", path_suffix="models"
                )
            ],
            std_out_err_path_prefix="$AZ_BATCHAI_JOB_MOUNT_ROOT/afs",
            custom_toolkit_settings=m.CustomToolkitSettings(
                command_line="python3 $AZ_BATCHAI_INPUT_SCRIPT/train.py"
            ),
            constraints=m.JobBasePropertiesConstraints(max_wall_clock_time=timedelta(hours=1)),
        ),
    ).result()
    assert job.provisioning_state == "succeeded" and job.tool_type == "custom"
    assert "not-needed" not in str(job.as_dict())

    deadline = time.monotonic() + 60
    while (job := client.jobs.get(rg, ws, exp, "j1")).execution_state not in (
        "succeeded",
        "failed",
    ):
        assert time.monotonic() < deadline, job.execution_state
        time.sleep(0.2)
    files = list(
        client.jobs.list_output_files(
            rg, ws, exp, "j1", m.JobsListOutputFilesOptions(outputdirectoryid="stdouterr")
        )
    )
    logs = {f.name: httpx.get(f.download_url).text for f in files}
    assert job.execution_state == "succeeded", (job.execution_info.as_dict(), logs)
    assert job.execution_info.exit_code == 0
    by_name = {f.name: f for f in files}
    assert {"stdout.txt", "stderr.txt"} <= set(by_name)
    stdout = httpx.get(by_name["stdout.txt"].download_url)  # a plain GET, no token
    assert stdout.status_code == 200
    assert stdout.content == b"training in j1\ntotal 10\n"
    assert by_name["stdout.txt"].content_length == len(stdout.content)
    assert httpx.get(by_name["stderr.txt"].download_url).content == b"a warning\n"
    for f in files:
        assert httpx.get(f.download_url).status_code == 200

    models = list(
        client.jobs.list_output_files(
            rg,
            ws,
            exp,
            "j1",
            m.JobsListOutputFilesOptions(outputdirectoryid="MODEL", max_results=1),
        )
    )
    assert [f.name for f in models] == ["model.txt"]
    assert httpx.get(models[0].download_url).content == b"model 10\n"


def test_sdk_typed_errors_lists_and_deletes(server: Server) -> None:
    client = sdk(server)
    with pytest.raises(ClientAuthenticationError):
        sdk(server, token="wrong").workspaces.get("rg", "ws")
    with pytest.raises(ResourceNotFoundError) as missing:
        client.workspaces.get("rg", "ws")
    assert missing.value.error is not None and missing.value.error.code == "WorkspaceNotFound"

    for name in ("ws1", "ws2", "ws3"):
        client.workspaces.begin_create(
            "rg", name, m.WorkspaceCreateParameters(location="local")
        ).result()
    assert [w.name for w in client.workspaces.list(m.WorkspacesListOptions(max_results=1))] == [
        "ws1",
        "ws2",
        "ws3",
    ]
    assert len(list(client.workspaces.list_by_resource_group("rg"))) == 3
    updated = client.workspaces.update("rg", "ws1", m.WorkspaceUpdateParameters(tags={"a": "b"}))
    assert updated.tags == {"a": "b"}

    client.experiments.begin_create("rg", "ws1", "exp").result()
    client.clusters.begin_create(
        "rg",
        "ws1",
        "c",
        m.ClusterCreateParameters(
            vm_size="x",
            scale_settings=m.ScaleSettings(manual=m.ManualScaleSettings(target_node_count=1)),
        ),
    ).result()
    with pytest.raises(ResourceExistsError):
        client.clusters.begin_create(
            "rg", "ws1", "c", m.ClusterCreateParameters(vm_size="x")
        ).result()
    resized = client.clusters.update(
        "rg",
        "ws1",
        "c",
        m.ClusterUpdateParameters(
            scale_settings=m.ScaleSettings(manual=m.ManualScaleSettings(target_node_count=3))
        ),
    )
    assert resized.scale_settings.manual.target_node_count == 3

    def nodes() -> list[str]:  # a resize is allocated by the dispatcher's next round
        return [n.node_id for n in client.clusters.list_remote_login_information("rg", "ws1", "c")]

    wait_until(lambda: len(nodes()) == 3, "the 3 nodes of the resize")
    assert nodes() == ["c-0", "c-1", "c-2"]
    assert [c.name for c in client.clusters.list_by_workspace("rg", "ws1")] == ["c"]

    nfs = client.file_servers.begin_create(
        "rg",
        "ws1",
        "nfs",
        m.FileServerCreateParameters(
            vm_size="STANDARD_D1",
            ssh_configuration=m.SshConfiguration(
                user_account_settings=m.UserAccountSettings(
                    admin_user_name="me", admin_user_password="pw"
                )
            ),
            data_disks=m.DataDisks(
                disk_size_in_gb=10, disk_count=1, storage_account_type="Standard_LRS"
            ),
        ),
    ).result()
    assert nfs.name == "nfs"
    assert [f.name for f in client.file_servers.list_by_workspace("rg", "ws1")] == ["nfs"]

    assert [o.name for o in client.operations.list()][0].startswith("Microsoft.BatchAI/")
    assert {u.name.value for u in client.usages.list("local")} == {"Clusters", "Cluster Nodes"}

    client.clusters.begin_delete("rg", "ws1", "c").result()
    client.experiments.begin_delete("rg", "ws1", "exp").result()
    client.workspaces.begin_delete("rg", "ws1").result()
    assert [w.name for w in client.workspaces.list()] == ["ws2", "ws3"]


def test_sdk_terminate_waits_for_the_job(server: Server, bai: Bai) -> None:
    bai("storage", "account", "create", "-n", "acct")
    bai("storage", "share", "create", "--account", "acct", "-n", "logs")
    client = sdk(server)
    client.workspaces.begin_create(
        "rg", "ws", m.WorkspaceCreateParameters(location="local")
    ).result()
    client.experiments.begin_create("rg", "ws", "exp").result()
    scale = m.ScaleSettings(manual=m.ManualScaleSettings(target_node_count=1))
    cluster = client.clusters.begin_create(
        "rg", "ws", "c", m.ClusterCreateParameters(vm_size="x", scale_settings=scale)
    ).result()
    client.jobs.begin_create(
        "rg",
        "ws",
        "exp",
        "sleeper",
        m.JobCreateParameters(
            cluster=m.ResourceId(id=cluster.id),
            node_count=1,
            std_out_err_path_prefix="$AZ_BATCHAI_JOB_MOUNT_ROOT/afs",
            mount_volumes=m.MountVolumes(
                azure_file_shares=[
                    m.AzureFileShareReference(
                        account_name="acct",
                        azure_file_url="https://acct.file.core.windows.net/logs",
                        credentials=m.AzureStorageCredentialsInfo(account_key="k"),
                        relative_mount_path="afs",
                    )
                ]
            ),
            custom_toolkit_settings=m.CustomToolkitSettings(command_line="sleep 60"),
        ),
    ).result()
    client.jobs.begin_terminate("rg", "ws", "exp", "sleeper").result()
    assert client.jobs.get("rg", "ws", "exp", "sleeper").execution_state == "failed"
    client.jobs.begin_delete("rg", "ws", "exp", "sleeper").result()
    assert list(client.jobs.list_by_experiment("rg", "ws", "exp")) == []


def test_sdk_deletes_are_long_running(server: Server, bai: Bai) -> None:
    """A DELETE answers 202 at once; the SDK's poller returns once the resource is gone."""
    bai("storage", "account", "create", "-n", "acct")
    bai("storage", "share", "create", "--account", "acct", "-n", "logs")
    client = sdk(server)
    client.workspaces.begin_create(
        "rg", "ws", m.WorkspaceCreateParameters(location="local")
    ).result()
    client.experiments.begin_create("rg", "ws", "exp").result()
    scale = m.ScaleSettings(manual=m.ManualScaleSettings(target_node_count=1))
    cluster = client.clusters.begin_create(
        "rg", "ws", "c", m.ClusterCreateParameters(vm_size="x", scale_settings=scale)
    ).result()
    params = m.JobCreateParameters(
        cluster=m.ResourceId(id=cluster.id),
        node_count=1,
        std_out_err_path_prefix="$AZ_BATCHAI_JOB_MOUNT_ROOT/afs",
        mount_volumes=m.MountVolumes(
            azure_file_shares=[
                m.AzureFileShareReference(
                    account_name="acct",
                    azure_file_url="https://acct.file.core.windows.net/logs",
                    credentials=m.AzureStorageCredentialsInfo(account_key="k"),
                    relative_mount_path="afs",
                )
            ]
        ),
        custom_toolkit_settings=m.CustomToolkitSettings(command_line="sleep 60"),
    )
    client.jobs.begin_create("rg", "ws", "exp", "sleeper", params).result()
    deadline = time.monotonic() + 60
    while client.jobs.get("rg", "ws", "exp", "sleeper").execution_state != "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)

    client.jobs.begin_delete("rg", "ws", "exp", "sleeper").result()
    with pytest.raises(ResourceNotFoundError):
        client.jobs.get("rg", "ws", "exp", "sleeper")

    client.jobs.begin_create("rg", "ws", "exp", "again", params).result()
    client.workspaces.begin_delete("rg", "ws").result()  # stops the job, deletes everything
    with pytest.raises(ResourceNotFoundError):
        client.workspaces.get("rg", "ws")


def test_a_delete_left_half_done_is_finished_by_the_next_server(bai: Bai) -> None:
    from openbai.installation import App
    from openbai.services import deletions
    from openbai.settings import Settings

    from .support import start_server

    bai("workspace", "create", "-n", "ws")
    app = App.open(Settings.load(bai.env))
    try:
        deletions.begin(app, "workspace", "default", "", "ws")  # and then the server stopped
    finally:
        app.close()
    assert bai.json("workspace", "show", "-n", "ws")["provisioningState"] == "deleting"
    server = start_server(bai.home, bai.env)
    try:
        deadline = time.monotonic() + 30
        while bai("workspace", "show", "-n", "ws", expect=None).exit_code != 3:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        server.stop()

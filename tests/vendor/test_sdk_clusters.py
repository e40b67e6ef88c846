"""azure-mgmt-batchai's test_mgmt_batchai_clusters.py, its flows against ``bai serve``."""

from __future__ import annotations

from typing import Any

from azure.mgmt.batchai import models as m

from .conftest import RG, WS
from .flows import (
    create_cluster,
    create_custom_job,
    job_files,
    remote_logins,
    wait_for_job,
    wait_for_nodes,
)

CLUSTER = "cluster"


def _can_run_a_job_on_the_host(client: Any, cluster_id: str, name: str) -> None:
    create_custom_job(
        client, cluster_id, name, 1, "echo hello | tee $AZ_BATCHAI_OUTPUT_OUTPUTS/hi.txt"
    )
    assert wait_for_job(client, name) == "succeeded"
    assert job_files(client, name, "OUTPUTS") == {"hi.txt": "hello\n"}
    stdouterr = job_files(client, name, "stdouterr")
    assert stdouterr["stdout.txt"] == "hello\n" and stdouterr["stderr.txt"] == ""


def test_creation_and_deletion(client: Any) -> None:
    cluster = create_cluster(client, CLUSTER, 1)
    assert cluster.name == CLUSTER and cluster.errors is None and cluster.vm_size == "STANDARD_D1"
    assert [c.name for c in client.clusters.list_by_workspace(RG, WS)] == [CLUSTER]
    assert wait_for_nodes(client, CLUSTER, 1).node_state_counts.idle_node_count == 1
    assert len(remote_logins(client, CLUSTER)) == 1
    _can_run_a_job_on_the_host(client, cluster.id, "host_job")
    client.clusters.begin_delete(RG, WS, CLUSTER).result()
    assert list(client.clusters.list_by_workspace(RG, WS)) == []


def test_setup_task_execution(client: Any, bai: Any) -> None:
    cluster = create_cluster(
        client,
        CLUSTER,
        1,
        setup=(
            "echo $GREETING $SECRET_GREETING",
            {"GREETING": "setup task"},
            {"SECRET_GREETING": "has a secret"},
        ),  # fmt: skip
    )
    wait_for_nodes(client, CLUSTER, 1)
    task = cluster.node_setup.setup_task
    assert [(s.name, s.value) for s in task.secrets] == [("SECRET_GREETING", None)]
    [node] = [n.node_id for n in remote_logins(client, CLUSTER)]
    out = bai.home / "storage" / "psdk" / "file" / "share" / task.std_out_err_path_suffix
    assert (out / f"stdout-{node}.txt").read_text() == "setup task has a secret\n"
    assert (out / f"stderr-{node}.txt").read_text() == ""


def _resize(client: Any, target: int) -> None:
    scale = m.ScaleSettings(manual=m.ManualScaleSettings(target_node_count=target))
    client.clusters.update(RG, WS, CLUSTER, m.ClusterUpdateParameters(scale_settings=scale))
    assert wait_for_nodes(client, CLUSTER, target).current_node_count == target
    assert len(remote_logins(client, CLUSTER)) == target


def test_cluster_resizing(client: Any) -> None:
    cluster = create_cluster(client, CLUSTER, 1)
    wait_for_nodes(client, CLUSTER, 1)
    assert len(remote_logins(client, CLUSTER)) == 1
    _resize(client, 0)
    _resize(client, 1)
    _can_run_a_job_on_the_host(client, cluster.id, "host_job")


def test_auto_scaling(client: Any) -> None:
    cluster = create_cluster(client, CLUSTER, 0)
    auto = m.AutoScaleSettings(minimum_node_count=0, maximum_node_count=1)
    client.clusters.update(
        RG, WS, CLUSTER, m.ClusterUpdateParameters(scale_settings=m.ScaleSettings(auto_scale=auto))
    )
    # the cluster has no node: it must grow to run the job
    _can_run_a_job_on_the_host(client, cluster.id, "host_job")
    # and shrink back to none once nothing needs it
    assert wait_for_nodes(client, CLUSTER, 0).current_node_count == 0

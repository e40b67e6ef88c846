"""ClusterCreateParameters / ClusterUpdateParameters, and the openbai extension."""

from typing import Any

import pytest
from conftest import SAMPLES

from openbai.errors import SpecError
from openbai.spec import (
    ClusterBaseProperties,
    ClusterCreateParameters,
    ClusterUpdateParameters,
    load_json_file,
    parse,
)

SNIPPETS = SAMPLES / "doc-snippets"
CLUSTER_SNIPPETS = [
    "cluster__multiple_mount_volumes.json",
    "cluster__setup_task_env_secrets.json",
    "cluster__unmanaged_glusterfs_subnet.json",
]


@pytest.mark.usefixtures("samples")  # skipped without ../shared, failed in CI
def test_every_cluster_snippet_is_known_to_this_test() -> None:
    assert sorted(path.name for path in SNIPPETS.glob("cluster__*.json")) == CLUSTER_SNIPPETS


@pytest.mark.usefixtures("samples")  # skipped without ../shared, failed in CI
@pytest.mark.parametrize("name", CLUSTER_SNIPPETS)
def test_doc_snippet_clusters_parse(name: str) -> None:
    cluster = parse(ClusterCreateParameters, load_json_file(SNIPPETS / name))

    assert cluster.properties.vm_size == "STANDARD_NC6"
    assert cluster.properties.openbai.executor == "local"
    assert cluster.properties.node_setup is not None


@pytest.mark.usefixtures("samples")  # skipped without ../shared, failed in CI
def test_doc_snippet_mounts_every_kind() -> None:
    cluster = parse(
        ClusterCreateParameters, load_json_file(SNIPPETS / "cluster__multiple_mount_volumes.json")
    )

    node_setup = cluster.properties.node_setup
    assert node_setup is not None and node_setup.mount_volumes is not None
    volumes = node_setup.mount_volumes
    assert [kind for kind, _, _ in volumes.iter_references()] == [
        "azureFileShares",
        "azureFileShares",
        "azureBlobFileSystems",
        "azureBlobFileSystems",
        "fileServers",
        "fileServers",
        "unmanagedFileSystems",
    ]


@pytest.mark.usefixtures("samples")  # skipped without ../shared, failed in CI
def test_setup_task_secrets_are_hidden_from_public_output() -> None:
    cluster = parse(
        ClusterCreateParameters, load_json_file(SNIPPETS / "cluster__setup_task_env_secrets.json")
    )

    task = cluster.to_public_wire()["properties"]["nodeSetup"]["setupTask"]
    assert task["secrets"][0] == {"name": "VARIABLE3"}
    assert "Value 3" not in repr(cluster)
    assert (
        cluster.to_wire()["properties"]["nodeSetup"]["setupTask"]["secrets"][0]["value"]
        == "Value 3"
    )


@pytest.mark.usefixtures("samples")  # skipped without ../shared, failed in CI
def test_a_show_response_reads_as_cluster_properties() -> None:
    properties = parse(
        ClusterBaseProperties, load_json_file(SNIPPETS / "cluster_show_response__example.json")
    )

    assert properties.target_node_count == 2
    assert properties.user_account_settings is not None
    assert properties.user_account_settings.admin_user_name == "myuser"


def cluster(**properties: Any) -> dict[str, Any]:
    return {"properties": properties}


def test_target_node_count() -> None:
    manual = parse(
        ClusterCreateParameters, cluster(scaleSettings={"manual": {"targetNodeCount": 2}})
    )
    auto = parse(
        ClusterCreateParameters,
        cluster(scaleSettings={"autoScale": {"minimumNodeCount": 0, "maximumNodeCount": 4}}),
    )

    assert manual.properties.target_node_count == 2
    assert manual.to_wire()["properties"]["scaleSettings"]["manual"] == {
        "targetNodeCount": 2,
        "nodeDeallocationOption": "requeue",
    }
    assert auto.properties.target_node_count == 4
    assert parse(ClusterCreateParameters, cluster()).properties.target_node_count == 0


@pytest.mark.parametrize(
    ("scale", "target"),
    [
        ({}, "properties.scaleSettings"),
        (
            {
                "manual": {"targetNodeCount": 1},
                "autoScale": {"minimumNodeCount": 0, "maximumNodeCount": 1},
            },
            "properties.scaleSettings.autoScale",
        ),
        ({"manual": {"targetNodeCount": -1}}, "properties.scaleSettings.manual.targetNodeCount"),
        ({"manual": {"targetNodeCount": 101}}, "properties.scaleSettings.manual.targetNodeCount"),
        (
            {"manual": {"targetNodeCount": 1, "nodeDeallocationOption": "later"}},
            "properties.scaleSettings.manual.nodeDeallocationOption",
        ),
        (
            {"autoScale": {"minimumNodeCount": 3, "maximumNodeCount": 2}},
            "properties.scaleSettings.autoScale.maximumNodeCount",
        ),
        (
            {"autoScale": {"minimumNodeCount": 0, "maximumNodeCount": 2, "initialNodeCount": 3}},
            "properties.scaleSettings.autoScale.initialNodeCount",
        ),
    ],
)
def test_bad_scale_settings(scale: dict[str, Any], target: str) -> None:
    with pytest.raises(SpecError) as info:
        parse(ClusterCreateParameters, cluster(scaleSettings=scale))

    assert info.value.target == target


def test_enums_are_matched_ignoring_case() -> None:
    properties = parse(
        ClusterCreateParameters,
        cluster(
            vmPriority="LowPriority",
            scaleSettings={"manual": {"targetNodeCount": 1, "nodeDeallocationOption": "Terminate"}},
        ),
    ).properties

    assert properties.vm_priority == "lowpriority"
    assert properties.to_wire()["scaleSettings"]["manual"]["nodeDeallocationOption"] == "terminate"


def test_openbai_extension_selects_slurm() -> None:
    properties = parse(
        ClusterCreateParameters,
        cluster(
            openbai={
                "executor": "slurm",
                "partition": "gpu",
                "requireContainers": True,
                "containerRuntime": "apptainer",
            }
        ),
    ).properties

    assert properties.openbai.executor == "slurm"
    assert properties.openbai.partition == "gpu"
    assert properties.openbai.require_containers is True
    assert properties.to_wire()["openbai"] == {
        "executor": "slurm",
        "partition": "gpu",
        "requireContainers": True,
        "containerRuntime": "apptainer",
        # the defaults: sandboxed, no run on the host for image jobs, GPUs not shared
        "sandbox": True,
        "allowHostRuns": False,
        "shareGpus": False,
    }


@pytest.mark.parametrize(
    ("extension", "target"),
    [
        ({"executor": "kubernetes"}, "properties.openbai.executor"),
        ({"partition": "gpu; rm -rf /"}, "properties.openbai.partition"),
        ({"requireContainers": "yes"}, "properties.openbai.requireContainers"),
        ({"containerRuntime": "lxc"}, "properties.openbai.containerRuntime"),
    ],
)
def test_bad_openbai_extension(extension: dict[str, Any], target: str) -> None:
    with pytest.raises(SpecError) as info:
        parse(ClusterCreateParameters, cluster(openbai=extension))

    assert info.value.target == target


def test_admin_password_is_hidden() -> None:
    created = parse(
        ClusterCreateParameters,
        cluster(userAccountSettings={"adminUserName": "me", "adminUserPassword": "pa55word"}),
    )

    assert "pa55word" not in repr(created)
    assert created.to_public_wire()["properties"]["userAccountSettings"] == {"adminUserName": "me"}


def test_update_carries_only_scale_settings() -> None:
    update = parse(
        ClusterUpdateParameters,
        {"properties": {"scaleSettings": {"manual": {"targetNodeCount": 3}}, "vmSize": "X"}},
    )

    assert update.properties.scale_settings is not None
    assert update.properties.scale_settings.target_node_count == 3
    assert update.to_wire() == {
        "properties": {
            "scaleSettings": {"manual": {"targetNodeCount": 3, "nodeDeallocationOption": "requeue"}}
        }
    }
    assert parse(ClusterUpdateParameters, {}).properties.scale_settings is None

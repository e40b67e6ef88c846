"""mountVolumes: volume shapes, file share URLs and mount path rules."""

from typing import Any

import pytest

from openbai.errors import SpecError
from openbai.spec import AzureFileShareReference, JobCreateParameters, MountVolumes, parse


def share(
    path: str = "logs", url: str = "https://acct.file.core.windows.net/logs", **extra: Any
) -> dict[str, Any]:
    return {"azureFileUrl": url, "relativeMountPath": path, **extra}


def job_with_mounts(volumes: dict[str, Any]) -> dict[str, Any]:
    return {
        "properties": {
            "customToolkitSettings": {"commandLine": "true"},
            "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
            "mountVolumes": volumes,
        }
    }


def test_recipe_style_share_needs_no_account_or_credentials() -> None:
    volume = parse(AzureFileShareReference, share())

    assert volume.account_name is None and volume.credentials is None
    assert volume.file_mode == "0777" and volume.directory_mode == "0777"
    assert volume.url_account() == "acct"
    assert volume.share_name == "logs"
    assert volume.share_subpath == ""


def test_a_path_after_the_share_is_a_sub_directory_mount() -> None:
    volume = parse(
        AzureFileShareReference,
        share("autoafs/logs", "https://acct.file.core.windows.net/batchaishare/logs/"),
    )

    assert volume.share_name == "batchaishare"
    assert volume.share_subpath == "logs"


def test_placeholders_are_accepted_by_the_models() -> None:
    volumes = parse(
        MountVolumes,
        {
            "azureFileShares": [
                share(url="https://<AZURE_BATCHAI_STORAGE_ACCOUNT>.file.core.windows.net/logs")
            ],
            "azureBlobFileSystems": [
                {
                    "accountName": "<AZURE_BATCHAI_STORAGE_ACCOUNT>",
                    "containerName": "data",
                    "relativeMountPath": "data",
                    "credentials": {"accountKey": "<AZURE_BATCHAI_STORAGE_KEY>"},
                }
            ],
        },
    )

    assert volumes.azure_file_shares[0].url_account() == "<AZURE_BATCHAI_STORAGE_ACCOUNT>"


def test_plain_http_hosts_with_ports_are_allowed() -> None:
    volume = parse(AzureFileShareReference, share(url="http://127.0.0.1:10445/share/sub/dir"))

    assert volume.share_name == "share"
    assert volume.share_subpath == "sub/dir"


@pytest.mark.parametrize(
    "url",
    [
        "acct.file.core.windows.net/logs",
        "https://acct.file.core.windows.net",
        "ftp://h/s",
        "https://acct.file.core.windows.net/share/../other",
    ],
)
def test_bad_file_urls_are_refused(url: str) -> None:
    with pytest.raises(SpecError) as info:
        parse(MountVolumes, {"azureFileShares": [share(url=url)]})

    assert info.value.target == "azureFileShares[0].azureFileUrl"


def test_file_modes_are_four_octal_digits() -> None:
    with pytest.raises(SpecError) as info:
        parse(MountVolumes, {"azureFileShares": [share(fileMode="777")]})

    assert info.value.target == "azureFileShares[0].fileMode"


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("../x", "'..'"),
        ("/abs", "relative path"),
        ("a/../../b", "'..'"),
        ("", "must not be empty"),
        ("a\\b", "backslash"),
        (".", "name a directory"),
    ],
)
def test_relative_mount_paths_must_stay_below_the_mount_root(path: str, words: str) -> None:
    volumes = {"azureFileShares": [share(), share(path)]}

    with pytest.raises(SpecError) as info:
        parse(JobCreateParameters, job_with_mounts(volumes))

    assert info.value.target == "properties.mountVolumes.azureFileShares[1].relativeMountPath"
    assert words in info.value.message


def test_two_volumes_may_not_share_a_mount_path() -> None:
    volumes = {
        "azureFileShares": [share("logs")],
        "unmanagedFileSystems": [
            {"mountCommand": "mount -t glusterfs h:/gv0", "relativeMountPath": "logs/"}
        ],
    }

    with pytest.raises(SpecError) as info:
        parse(JobCreateParameters, job_with_mounts(volumes))

    assert info.value.target == "properties.mountVolumes.unmanagedFileSystems[0].relativeMountPath"
    assert "azureFileShares[0]" in info.value.message


def test_one_volume_may_not_be_mounted_inside_another() -> None:
    volumes = {
        "azureFileShares": [share("data/logs")],
        "azureBlobFileSystems": [
            {"accountName": "a", "containerName": "c", "relativeMountPath": "data"}
        ],
    }

    with pytest.raises(SpecError) as info:
        parse(MountVolumes, volumes)

    assert info.value.target == "azureBlobFileSystems[0].relativeMountPath"
    assert "contains 'data/logs'" in info.value.message


def test_similar_prefixes_are_not_nesting() -> None:
    volumes = parse(MountVolumes, {"azureFileShares": [share("data"), share("data2")]})

    assert [(kind, index) for kind, index, _ in volumes.iter_references()] == [
        ("azureFileShares", 0),
        ("azureFileShares", 1),
    ]


def test_null_collections_read_as_empty() -> None:
    volumes = parse(MountVolumes, {"fileServers": None, "unmanagedFileSystems": None})

    assert volumes.file_servers == [] and volumes.unmanaged_file_systems == []


def test_account_keys_are_hidden_from_public_output() -> None:
    volumes = parse(MountVolumes, {"azureFileShares": [share(credentials={"accountKey": "KEY=="})]})

    assert "KEY==" not in repr(volumes)
    assert volumes.to_wire()["azureFileShares"][0]["credentials"] == {"accountKey": "KEY=="}
    assert volumes.to_public_wire()["azureFileShares"][0]["credentials"] == {}


def test_credentials_take_a_key_or_a_reference_not_both() -> None:
    credentials = {
        "accountKey": "k",
        "accountKeySecretReference": {"sourceVault": {"id": "/v"}, "secretUrl": "https://s"},
    }

    with pytest.raises(SpecError) as info:
        parse(MountVolumes, {"azureFileShares": [share(credentials=credentials)]})

    assert info.value.target == "azureFileShares[0].credentials"

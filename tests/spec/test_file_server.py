"""File server PUT bodies (nfs.json)."""

from typing import Any

import pytest

from openbai.errors import SpecError
from openbai.spec import FileServerCreateParameters, parse

NFS = {
    "properties": {
        "vmSize": "Standard_D2_V2",
        "sshConfiguration": {
            "publicIPsToAllow": ["10.0.0.0/8"],
            "userAccountSettings": {"adminUserName": "me", "adminUserPassword": "secret-pw"},
        },
        "dataDisks": {"diskSizeInGB": 10, "diskCount": 2, "storageAccountType": "standard_lrs"},
    }
}


def test_nfs_json_parses_with_its_unusual_spellings() -> None:
    server = parse(FileServerCreateParameters, NFS)

    disks = server.properties.data_disks
    assert (disks.disk_size_in_gb, disks.disk_count, disks.caching_type) == (10, 2, "none")
    assert disks.storage_account_type == "Standard_LRS"
    wire = server.to_wire()["properties"]
    assert wire["dataDisks"]["diskSizeInGB"] == 10
    assert wire["sshConfiguration"]["publicIPsToAllow"] == ["10.0.0.0/8"]


def test_admin_password_is_not_public() -> None:
    server = parse(FileServerCreateParameters, NFS)

    assert "secret-pw" not in repr(server)
    public = server.to_public_wire()["properties"]["sshConfiguration"]["userAccountSettings"]
    assert public == {"adminUserName": "me"}


@pytest.mark.parametrize(
    ("disks", "target"),
    [
        (
            {"diskCount": 1, "storageAccountType": "Standard_LRS"},
            "properties.dataDisks.diskSizeInGB",
        ),
        (
            {"diskSizeInGB": 0, "diskCount": 1, "storageAccountType": "Standard_LRS"},
            "properties.dataDisks.diskSizeInGB",
        ),
        (
            {"diskSizeInGB": 1, "diskCount": 1, "storageAccountType": "Ultra"},
            "properties.dataDisks.storageAccountType",
        ),
        (  # the REST document's int32
            {"diskSizeInGB": 1, "diskCount": 10**20, "storageAccountType": "Standard_LRS"},
            "properties.dataDisks.diskCount",
        ),
        (
            {"diskSizeInGB": 2**31, "diskCount": 1, "storageAccountType": "Standard_LRS"},
            "properties.dataDisks.diskSizeInGB",
        ),
    ],
)
def test_bad_data_disks(disks: dict[str, Any], target: str) -> None:
    data = {"properties": {**NFS["properties"], "dataDisks": disks}}

    with pytest.raises(SpecError) as info:
        parse(FileServerCreateParameters, data)

    assert info.value.target == target

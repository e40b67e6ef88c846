"""``bai file-server create/show/list/delete`` with az's flags and table."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Bai


def test_file_server_lifecycle(ws: Bai) -> None:
    created = ws.json(
        "file-server", "create", "-w", "ws", "-n", "nfs", "-s", "STANDARD_D14",
        "--disk-count", "2", "--disk-size", "10", "--storage-sku", "Premium_LRS",
        "--caching-type", "readonly", "-u", "admin", "-p", "s3cret",
    )  # fmt: skip
    assert created["vmSize"] == "STANDARD_D14"
    assert created["dataDisks"] == {
        "diskSizeInGB": 10,
        "diskCount": 2,
        "storageAccountType": "Premium_LRS",
        "cachingType": "readonly",
    }
    assert created["sshConfiguration"]["userAccountSettings"]["adminUserName"] == "admin"
    shown = ws("file-server", "show", "-w", "ws", "-n", "nfs").stdout
    assert "s3cret" not in shown and json.loads(shown)["name"] == "nfs"

    table = ws("file-server", "list", "-w", "ws", "-o", "table").stdout.split("\n")
    assert table[0].split() == [
        "Name", "Resource", "Group", "Size", "Disks", "Public", "IP", "Internal", "IP", "Type",
        "Mount", "Point",
    ]  # fmt: skip
    # a real NFS server on this machine: its address and export, as Batch AI's table showed
    assert table[1].split() == [
        "nfs", "default", "STANDARD_D14", "2", "x", "10", "Gb", "127.0.0.1", "127.0.0.1",
        "/mnt/data",
    ]  # fmt: skip

    duplicate = ws("file-server", "create", "-w", "ws", "-n", "nfs", "-s", "x",
                   "--disk-count", "1", "--disk-size", "1", "--storage-sku", "Standard_LRS",
                   expect=4)  # fmt: skip
    assert "file server nfs already exists" in duplicate.stderr
    ws("file-server", "delete", "-w", "ws", "-n", "nfs", input="n\n", expect=1)  # not confirmed
    ws("file-server", "show", "-w", "ws", "-n", "nfs")
    # the files of its export outlive it, where delete's help says
    data = ws.home / "file-servers" / "default" / "ws" / "nfs" / "data"
    (data / "kept.txt").write_text("still here")
    told = " ".join(ws("file-server", "delete", "--help").stdout.split())
    assert "The files of its export are kept" in told
    assert "$OPENBAI_HOME/file-servers/RG/WS/NAME/data" in told
    ws("file-server", "delete", "-w", "ws", "-n", "nfs", "-y")
    assert (data / "kept.txt").read_text() == "still here"
    assert (
        "file server nfs is not found"
        in ws("file-server", "show", "-w", "ws", "-n", "nfs", expect=3).stderr
    )
    assert ws.json("file-server", "list", "-w", "ws") == []


def test_file_server_from_a_config_file_and_bad_input(ws: Bai, tmp_path: Path) -> None:
    config = tmp_path / "nfs.json"
    config.write_text(
        json.dumps(
            {
                "properties": {
                    "vmSize": "STANDARD_D1",
                    "sshConfiguration": {"userAccountSettings": {"adminUserName": "me"}},
                    "dataDisks": {
                        "diskSizeInGB": 5,
                        "diskCount": 1,
                        "storageAccountType": "Standard_LRS",
                    },
                }
            }
        )
    )
    created = ws.json(
        "file-server", "create", "-w", "ws", "-n", "a", "-f", str(config), "--disk-count", "4"
    )
    assert created["dataDisks"]["diskCount"] == 4  # flags override the file
    quiet = ws("file-server", "create", "-w", "ws", "-n", "b", "-f", str(config), "--no-wait")
    assert quiet.stdout == ""
    assert [f["name"] for f in ws.json("file-server", "list", "-w", "ws")] == ["a", "b"]

    no_size = ws("file-server", "create", "-w", "ws", "-n", "c", "-s", "x", "--disk-count", "1",
                 "--storage-sku", "Standard_LRS", expect=2)  # fmt: skip
    assert "--disk-size" in no_size.stderr
    bad_name = ws(
        "file-server", "create", "-w", "ws", "-n", "bad.name", "-f", str(config), expect=2
    )
    assert "fileServerName" in bad_name.stderr
    bad_sku = ws("file-server", "create", "-w", "ws", "-n", "c", "-f", str(config),
                 "--storage-sku", "Fast", expect=2)  # fmt: skip
    assert "--storage-sku" in bad_sku.stderr


def test_file_server_delete_data_removes_its_files(ws: Bai) -> None:
    ws("file-server", "create", "-w", "ws", "-n", "nfs", "-s", "STANDARD_D14",
       "--disk-count", "1", "--disk-size", "10", "--storage-sku", "Standard_LRS")  # fmt: skip
    data = ws.home / "file-servers" / "default" / "ws" / "nfs" / "data"
    (data / "result.txt").write_text("written by a job")
    asked = ws("file-server", "delete", "-w", "ws", "-n", "nfs", "--delete-data", input="n\n",
               expect=1)  # fmt: skip
    assert "Delete file server nfs and its files?" in asked.stderr
    assert (data / "result.txt").is_file()
    ws("file-server", "delete", "-w", "ws", "-n", "nfs", "--delete-data", "-y")
    assert not data.exists()
    assert ws.json("file-server", "list", "-w", "ws") == []

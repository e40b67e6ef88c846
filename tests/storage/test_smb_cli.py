"""``bai storage`` on an Azure account whose file shares are served over SMB by Samba."""

from __future__ import annotations

from pathlib import Path

import pytest
from azurite_fixture import Azurite
from conftest import Bai
from samba_fixture import Samba

pytestmark = pytest.mark.samba


def connection_string(samba: Samba, blob_endpoint: str = "http://127.0.0.1:9/x") -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={samba.user};AccountKey={samba.password};"
        f"BlobEndpoint={blob_endpoint};"
    )


def create_account(bai: Bai, samba: Samba, blob_endpoint: str = "http://127.0.0.1:9/x") -> None:
    bai(
        "storage", "account", "create", "-n", "acct", "--kind", "azure",
        "--connection-string", connection_string(samba, blob_endpoint),
        "--file-endpoint", samba.file_endpoint,
        "--samba-config", str(samba.config),
    )  # fmt: skip


def make_tree(root: Path) -> dict[str, bytes]:
    files = {"train.py": b"print(1)\n", "data/a.csv": b"x\n1\n", "data/deep/b.bin": bytes(300)}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def test_shares_and_files_end_to_end(bai: Bai, samba: Samba, tmp_path: Path) -> None:
    create_account(bai, samba)
    bai("storage", "share", "create", "--account", "acct", "-n", "logs")
    try:
        assert "logs" in [s["name"] for s in bai.json(*"storage share list --account acct".split())]
        assert bai.json(*"storage share show --account acct -n logs".split())["kind"] == "file"

        files = make_tree(tmp_path / "src")
        report = bai.json(
            "storage", "file", "upload-batch", "--account", "acct", "-d", "logs",
            "-s", str(tmp_path / "src"), "--destination-path", "job1",
        )  # fmt: skip
        assert (report["filesTransferred"], report["filesFailed"]) == (len(files), 0)

        listed = bai.json(*"storage file list --account acct --share-name logs -p job1".split())
        assert sorted((e["name"], e["type"]) for e in listed) == [
            ("job1/data", "dir"),
            ("job1/train.py", "file"),
        ]
        deep = bai.json(*"storage file list --account acct --share-name logs --recursive".split())
        assert {e["name"]: e["contentLength"] for e in deep} == {
            f"job1/{rel}": len(data) for rel, data in files.items()
        }

        again = bai.json(
            "storage", "file", "upload-batch", "--account", "acct", "-d", "logs",
            "-s", str(tmp_path / "src"), "--destination-path", "job1",
        )  # fmt: skip
        assert again["filesSkipped"] == len(files)

        bai(
            "storage", "file", "download-batch", "--account", "acct", "-s", "logs",
            "--source-path", "job1", "-d", str(tmp_path / "back"),
        )  # fmt: skip
        for rel, data in files.items():
            assert (tmp_path / "back" / rel).read_bytes() == data
    finally:
        bai("storage", "share", "delete", "--account", "acct", "-n", "logs", "--yes")
    assert "logs" not in [s["name"] for s in bai.json(*"storage share list --account acct".split())]


def test_keys_are_never_shown(bai: Bai, samba: Samba) -> None:
    create_account(bai, samba)
    for args in ("storage account show -n acct", "storage account list"):
        for output in ("json", "table"):
            shown = bai(*args.split(), "-o", output).stdout
            assert samba.password not in shown
            assert "AccountKey" not in shown and "account_key" not in shown
            assert "connection_string" not in shown and "connectionString" not in shown
    shown = bai.json(*"storage account show -n acct".split())
    assert shown["kind"] == "azure" and shown["file_endpoint"] == samba.file_endpoint


def test_missing_share_is_an_error(bai: Bai, samba: Samba, tmp_path: Path) -> None:
    create_account(bai, samba)
    (tmp_path / "f").write_text("x")
    result = bai(
        "storage", "file", "upload-batch", "--account", "acct", "-d", "nope",
        "-s", str(tmp_path), expect=None,
    )  # fmt: skip
    assert result.exit_code != 0
    assert "nope" in result.stderr


@pytest.mark.azurite
def test_one_account_holds_containers_on_azurite_and_shares_on_samba(
    bai: Bai, samba: Samba, azurite: Azurite
) -> None:
    create_account(bai, samba, blob_endpoint=azurite.blob_endpoint)
    bai("storage", "container", "create", "--account", "acct", "-n", "cli-data")
    bai("storage", "share", "create", "--account", "acct", "-n", "cli-logs")
    try:
        assert "cli-data" in [
            c["name"] for c in bai.json(*"storage container list --account acct".split())
        ]
        assert "cli-logs" in [
            s["name"] for s in bai.json(*"storage share list --account acct".split())
        ]
    finally:
        bai("storage", "container", "delete", "--account", "acct", "-n", "cli-data", "--yes")
        bai("storage", "share", "delete", "--account", "acct", "-n", "cli-logs", "--yes")

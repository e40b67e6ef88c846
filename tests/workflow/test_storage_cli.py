"""Embedded storage accounts with the CLI: accounts, containers, shares, tree transfers."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import Bai
from job_files import upload_batch

from .conftest import storage_dir


def make_tree(root: Path, count: int = 20) -> Path:
    for i in range(count):
        path = root / f"class{i % 3}" / f"img{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(100 + i))
    return root


def test_accounts_containers_and_shares(bai: Bai) -> None:
    bai("storage", "account", "create", "-n", "acct")
    assert [a["name"] for a in bai.json("storage", "account", "list")] == ["acct"]
    assert bai.json("storage", "account", "show", "-n", "acct")["kind"] == "local"
    assert "already exists" in bai("storage", "account", "create", "-n", "acct", expect=4).stderr
    assert (
        "3 to 24 lowercase"
        in bai("storage", "account", "create", "-n", "Bad_Name", expect=2).stderr
    )

    for kind in ("container", "share"):
        bai("storage", kind, "create", "--account", "acct", "-n", "alpha")
        bai("storage", kind, "create", "--account", "acct", "-n", "beta")
        assert [v["name"] for v in bai.json("storage", kind, "list", "--account", "acct")] == [
            "alpha",
            "beta",
        ]
        assert (
            bai.json("storage", kind, "show", "--account", "acct", "-n", "alpha")["name"] == "alpha"
        )
        bai("storage", kind, "delete", "--account", "acct", "-n", "beta", "-y")
        assert [v["name"] for v in bai.json("storage", kind, "list", "--account", "acct")] == [
            "alpha"
        ]
        assert (
            "already exists"
            in bai("storage", kind, "create", "--account", "acct", "-n", "alpha", expect=4).stderr
        )
        assert (
            "lowercase"
            in bai("storage", kind, "create", "--account", "acct", "-n", "UPPER", expect=2).stderr
        )
    assert (
        "does not exist"
        in bai(
            "storage", "container", "create", "--account", "nosuch", "-n", "x1x", expect=3
        ).stderr
    )

    bai("storage", "account", "delete", "-n", "acct", "-y")
    assert bai.json("storage", "account", "list") == []
    assert not (bai.home / "storage" / "acct").exists()


def test_upload_batch_download_batch_and_skip_unchanged(bai: Bai, tmp_path: Path) -> None:
    bai("storage", "account", "create", "-n", "acct")
    bai("storage", "container", "create", "--account", "acct", "-n", "data")
    source = make_tree(tmp_path / "mnist")
    first = upload_batch(bai, source, "--destination-path", "mnist")
    assert (first["filesTransferred"], first["filesSkipped"]) == (20, 0)
    again = upload_batch(bai, source, "--destination-path", "mnist")
    assert (again["filesTransferred"], again["filesSkipped"]) == (0, 20)
    (source / "class0" / "img0.bin").write_bytes(b"changed content")
    third = upload_batch(bai, source, "--destination-path", "mnist")
    assert (third["filesTransferred"], third["filesSkipped"]) == (1, 19)

    listed = bai.json(
        *"storage blob list --account acct --container-name data --path mnist".split()
    )
    assert sorted(e["name"] for e in listed) == ["mnist/class0", "mnist/class1", "mnist/class2"]
    everything = bai.json(
        "storage", "blob", "list", "--account", "acct", "--container-name", "data", "--recursive"
    )
    assert len(everything) == 20

    target = tmp_path / "back"
    bai(
        "storage",
        "blob",
        "download-batch",
        "--account",
        "acct",
        "-s",
        "data",
        "-d",
        str(target),
        "--source-path",
        "mnist",
    )
    for path in source.rglob("*.bin"):
        assert (target / path.relative_to(source)).read_bytes() == path.read_bytes()
    assert (
        storage_dir(bai, "acct", "blob", "data") / "mnist" / "class0" / "img0.bin"
    ).read_bytes() == b"changed content"


def test_pattern_and_file_shares(bai: Bai, tmp_path: Path) -> None:
    bai("storage", "account", "create", "-n", "acct")
    bai("storage", "share", "create", "--account", "acct", "-n", "scripts")
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text("print(1)")
    (source / "notes.txt").write_text("x")
    report = bai.json(
        "storage",
        "file",
        "upload-batch",
        "--account",
        "acct",
        "-d",
        "scripts",
        "-s",
        str(source),
        "--pattern",
        "*.py",
    )
    assert report["filesTransferred"] == 1
    assert [
        e["name"]
        for e in bai.json("storage", "file", "list", "--account", "acct", "--share-name", "scripts")
    ] == ["train.py"]


def test_az_short_flags_of_blob_list_and_file_list(bai: Bai) -> None:
    # `az storage blob list -c CONTAINER`, `az storage file list -s SHARE`
    bai("storage", "account", "create", "-n", "acct")
    bai("storage", "container", "create", "--account", "acct", "-n", "data")
    bai("storage", "share", "create", "--account", "acct", "-n", "logs")
    assert bai.json("storage", "blob", "list", "--account", "acct", "-c", "data") == []
    assert bai.json("storage", "file", "list", "--account", "acct", "-s", "logs") == []
    missing = bai("storage", "blob", "list", "--account", "acct", "-c", "nope", expect=3)
    assert missing.stderr == "ERROR: container 'nope' does not exist in account 'acct'\n"


def test_storage_account_commands_take_az_resource_group(bai: Bai) -> None:
    bai("storage", "account", "create", "-n", "acct", "-g", "data-rg")
    bai("storage", "account", "create", "-n", "other")
    assert bai.json("storage", "account", "show", "-n", "acct", "-g", "data-rg")["name"] == "acct"
    assert [a["name"] for a in bai.json("storage", "account", "list", "-g", "data-rg")] == ["acct"]
    wrong = bai("storage", "account", "show", "-n", "acct", "-g", "default", expect=3)
    assert "is not in resource group default (it is in data-rg)" in wrong.stderr
    bai("storage", "account", "delete", "-n", "acct", "-g", "default", "-y", expect=3)
    bai("storage", "account", "delete", "-n", "acct", "-g", "data-rg", "-y")
    assert [a["name"] for a in bai.json("storage", "account", "list")] == ["other"]
    # a resource group's name as a workspace's (it is one of the account's ARM ids)
    bad = bai("storage", "account", "create", "-n", "acct2", "-g", "../../x y/z", expect=2)
    assert "resourceGroup" in bad.stderr
    assert [a["name"] for a in bai.json("storage", "account", "list")] == ["other"]


def test_a_bad_container_name_in_a_transfer_names_its_flag(bai: Bai, tmp_path: Path) -> None:
    bai("storage", "account", "create", "-n", "acct")
    source = make_tree(tmp_path / "t", 2)
    up = bai("storage", "blob", "upload-batch", "--account", "acct", "-d", "Bad_Name",
             "-s", str(source), expect=2)  # fmt: skip
    assert up.stderr.startswith("ERROR: --destination may hold only lowercase letters")
    down = bai("storage", "file", "download-batch", "--account", "acct", "-s", "ab",
               "-d", str(tmp_path / "out"), expect=2)  # fmt: skip
    assert down.stderr.startswith("ERROR: --source must be 3 to 63 characters long")
    assert not (tmp_path / "out").exists()


def test_paths_cannot_escape_the_volume(bai: Bai, tmp_path: Path) -> None:
    bai("storage", "account", "create", "-n", "acct")
    bai("storage", "container", "create", "--account", "acct", "-n", "data")
    source = make_tree(tmp_path / "t", 2)
    out = bai(
        "storage",
        "blob",
        "upload-batch",
        "--account",
        "acct",
        "-d",
        "data",
        "-s",
        str(source),
        "--destination-path",
        "../../escape",
        expect=2,
    )
    assert "--destination-path" in out.stderr
    assert not (bai.home / "storage" / "escape").exists()
    out = bai("storage blob list --account acct --container-name data --path ../..", expect=2)
    assert "--path" in out.stderr


def test_output_formats_and_query(bai: Bai) -> None:
    bai("storage", "account", "create", "-n", "acct")
    bai("storage", "account", "create", "-n", "other")
    assert bai("storage", "account", "list", "--query", "[].name", "-o", "tsv").stdout.split() == [
        "acct",
        "other",
    ]
    table = bai("storage", "account", "list", "-o", "table").stdout
    assert table.splitlines()[0].split()[:2] == ["Name", "Kind"]
    assert bai("storage", "account", "list", "-o", "none").stdout == ""
    assert "--query" in bai("storage", "account", "list", "--query", "[", expect=2).stderr


def test_config_show_gives_the_subscription_sdk_clients_need(bai: Bai) -> None:
    shown = bai.json("config", "show")
    assert shown["home"] == str(bai.home)
    assert (
        json.loads((bai.home / "config.json").read_text())["subscriptionId"]
        == shown["subscriptionId"]
    )
    assert shown["resourceGroup"] == "default"


def test_a_download_to_a_place_it_cannot_write_is_an_error_not_a_traceback(
    bai: Bai, tmp_path: Path
) -> None:
    bai("storage", "account", "create", "-n", "acct")
    bai("storage", "container", "create", "--account", "acct", "-n", "data")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = bai(
        "storage", "blob", "download-batch", "--account", "acct", "-s", "data",
        "-d", str(blocker / "below"), expect=1,
    )  # fmt: skip
    assert result.stderr.startswith("ERROR: Not a directory: ")
    assert str(blocker / "below") in result.stderr
    assert "Traceback" not in result.stderr

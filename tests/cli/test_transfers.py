"""``bai storage blob|file upload-batch/download-batch`` with an embedded account, as a user
sees them: the report, skip-unchanged, a download into a tree that has other files, and the
progress bar on a terminal."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Bai

from openbai.storage.atomic import is_partial_name


def make_tree(root: Path, count: int = 30) -> dict[str, bytes]:
    files = {f"class{i % 3}/img{i}.bin": os.urandom(100 + i) for i in range(count)}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def on_disk(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize(("kind", "noun"), [("blob", "container"), ("file", "share")])
def test_download_batch_into_an_existing_tree_then_again(
    bai: Bai, tmp_path: Path, kind: str, noun: str
) -> None:
    bai("storage", "account", "create", "-n", "acct")
    bai("storage", noun, "create", "--account", "acct", "-n", "data")
    files = make_tree(tmp_path / "src")
    up = bai.json("storage", kind, "upload-batch", "--account", "acct", "-d", "data",
                  "-s", str(tmp_path / "src"))  # fmt: skip
    assert (up["filesTransferred"], up["filesSkipped"], up["filesFailed"]) == (30, 0, 0)

    target = tmp_path / "dst"
    (target / "class0").mkdir(parents=True)
    (target / "class0" / "img0.bin").write_bytes(b"stale")
    (target / "class0" / "mine.txt").write_bytes(b"kept")
    download = ("storage", kind, "download-batch", "--account", "acct", "-s", "data",
                "-d", str(target))  # fmt: skip
    first = bai.json(*download)
    assert (first["filesTotal"], first["filesTransferred"], first["filesSkipped"]) == (30, 30, 0)
    assert on_disk(target) == {**files, "class0/mine.txt": b"kept"}
    assert not [p for p in target.rglob("*") if is_partial_name(p.name)]
    for rel in files:  # dated as in the volume: what lets the next run skip them
        assert (target / rel).stat().st_mtime_ns // 1000 == (
            tmp_path / "src" / rel
        ).stat().st_mtime_ns // 1000

    again = bai.json(*download)
    assert (again["filesTransferred"], again["filesSkipped"]) == (0, 30)
    assert again["bytesTransferred"] == 0 and again["bytesTotal"] == sum(map(len, files.values()))


def run_on_a_terminal(bai: Bai, *args: str, expect: int = 0) -> str:
    """What ``bai ARGS`` writes to stderr when stderr is a terminal (stdout is a pipe)."""
    exe = str(Path(sys.executable).parent / "bai")
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [exe, *args], env={**bai.env, "COLUMNS": "160"}, stdout=subprocess.PIPE,
        stderr=follower, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the command is done
                break
            if not chunk:
                break
            seen += chunk
        elif process.poll() is not None:
            break
    os.close(leader)
    assert process.wait(timeout=30) == expect, seen.decode(errors="replace")
    assert process.stdout is not None
    process.stdout.close()
    return seen.decode(errors="replace")


def test_an_uploaded_file_keeps_a_files_usual_mode_through_the_server_too(
    any_bai: Bai, tmp_path: Path
) -> None:
    """A dataset uploaded through ``--server`` is readable by jobs (their own user) as one
    uploaded in process: not the 0600 of the server's spool file."""
    any_bai("storage", "account", "create", "-n", "acct")
    any_bai("storage", "container", "create", "--account", "acct", "-n", "data")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f.csv").write_text("1,2\n")
    (tmp_path / "src" / "f.csv").chmod(0o644)
    any_bai("storage", "blob", "upload-batch", "--account", "acct", "-d", "data",
            "-s", str(tmp_path / "src"))  # fmt: skip
    stored = any_bai.home / "storage" / "acct" / "blob" / "data" / "f.csv"
    assert stored.read_text() == "1,2\n" and stat.S_IMODE(stored.stat().st_mode) == 0o644


def test_progress_is_shown_on_a_terminal(bai: Bai, tmp_path: Path) -> None:
    bai("storage", "account", "create", "-n", "acct")
    bai("storage", "container", "create", "--account", "acct", "-n", "data")
    make_tree(tmp_path / "src")
    upload = ("storage", "blob", "upload-batch", "--account", "acct", "-d", "data",
              "-s", str(tmp_path / "src"))  # fmt: skip
    assert "upload to data" in run_on_a_terminal(bai, *upload)
    assert "30/30 files (30 unchanged)" in run_on_a_terminal(bai, *upload)
    download = ("storage", "blob", "download-batch", "--account", "acct", "-s", "data",
                "-d", str(tmp_path / "dst"))  # fmt: skip
    shown = run_on_a_terminal(bai, *download)
    assert "download from data" in shown and "30/30 files" in shown
    assert "unchanged" not in shown
    assert "(30 unchanged)" in run_on_a_terminal(bai, *download)
    assert "30/30 files" not in run_on_a_terminal(bai, *download, "--no-progress")


def test_a_failed_file_named_like_markup_is_reported_and_the_rest_goes_on(
    bai: Bai, tmp_path: Path
) -> None:
    bai("storage", "account", "create", "-n", "acct")
    bai("storage", "container", "create", "--account", "acct", "-n", "data")
    first = tmp_path / "first" / "a[" / "red]"
    first.mkdir(parents=True)
    (first / "f").write_text("x")  # the container gets a folder "a[/red]"
    bai("storage", "blob", "upload-batch", "--account", "acct", "-d", "data",
        "-s", str(tmp_path / "first"), "--no-progress")  # fmt: skip
    second = tmp_path / "second"
    (second / "a[").mkdir(parents=True)
    (second / "a[" / "red]").write_text("a file where the container has a folder")
    for i in range(20):
        (second / f"z{i}").write_text(str(i))
    shown = run_on_a_terminal(
        bai, "storage", "blob", "upload-batch", "--account", "acct", "-d", "data",
        "-s", str(second), "--max-connections", "1", expect=1,
    )  # fmt: skip
    assert "Traceback" not in shown
    assert "failed a[/red]: " in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown)
    stored = bai.json("storage", "blob", "list", "--account", "acct", "-c", "data")
    assert sum(1 for b in stored if b["name"].startswith("z")) == 20


def test_an_embedded_transfer_loads_neither_the_orm_nor_rich(bai: Bai, tmp_path: Path) -> None:
    """Imports were most of a 10,000-file upload's CPU: an account's backend needs only its
    row (read with sqlite3), and the bar's rich only loads on a terminal."""
    from cli.test_quick_reads import HEAVY, imported

    bai("storage", "account", "create", "-n", "acct")
    bai("storage", "share", "create", "--account", "acct", "-n", "data")
    make_tree(tmp_path / "src", 3)
    for args in (
        ("upload-batch", "-d", "data", "-s", str(tmp_path / "src")),
        ("download-batch", "-s", "data", "-d", str(tmp_path / "dst")),
    ):
        assert imported(bai, "storage", "file", *args, "--account", "acct") & HEAVY == set()
    assert on_disk(tmp_path / "dst") == on_disk(tmp_path / "src")
    missing = bai("storage", "file", "upload-batch", "--account", "nosuch", "-d", "data",
                  "-s", str(tmp_path / "src"), expect=3)  # fmt: skip
    assert "storage account 'nosuch' does not exist" in missing.stderr


def test_upload_batch_dryrun_lists_the_files_and_uploads_nothing(
    any_bai: Bai, tmp_path: Path
) -> None:
    """``--dryrun`` (az's flag) plans as a real run does, --pattern and --destination-path
    included, and says which files a real run would skip as unchanged; it writes nothing."""
    any_bai("storage", "account", "create", "-n", "acct")
    any_bai("storage", "container", "create", "--account", "acct", "-n", "data")
    src = tmp_path / "src"
    files = make_tree(src, 6)
    upload = ("storage", "blob", "upload-batch", "--account", "acct", "-d", "data",
              "-s", str(src), "--pattern", "class[01]/*", "--destination-path", "in")  # fmt: skip
    chosen = sorted(rel for rel in files if rel.startswith(("class0/", "class1/")))

    plan = any_bai.json(*upload, "--dryrun")
    assert plan == {
        "dryrun": True, "source": str(src), "destination": "data/in",
        "filesTotal": 4, "filesToTransfer": 4, "filesSkipped": 0, "filesFailed": 0,
        "bytesToTransfer": sum(len(files[rel]) for rel in chosen),
        "files": [
            {"source": str(src / rel), "destination": f"in/{rel}", "size": len(files[rel]),
             "action": "upload"}
            for rel in chosen
        ],
        "failures": [],
    }  # fmt: skip
    listed = any_bai.json("storage", "blob", "list", "--account", "acct", "-c", "data",
                          "--recursive")  # fmt: skip
    assert listed == []
    assert not list((any_bai.home / "storage" / "acct" / "blob" / "data").iterdir())

    any_bai(*upload)
    (src / "class1" / "img1.bin").write_bytes(b"changed")
    again = any_bai.json(*upload, "--dryrun")
    assert [(f["destination"], f["action"]) for f in again["files"]] == [
        (f"in/{rel}", "upload" if rel == "class1/img1.bin" else "skip (unchanged)")
        for rel in chosen
    ]
    assert (again["filesToTransfer"], again["filesSkipped"], again["bytesToTransfer"]) == (1, 3, 7)
    stored = any_bai.home / "storage" / "acct" / "blob" / "data" / "in" / "class1" / "img1.bin"
    assert stored.read_bytes() == files["class1/img1.bin"]  # still the first upload's

    # -o table/tsv print the files, --query picks from the whole plan
    table = any_bai(*upload, "--dryrun", "-o", "tsv").stdout.splitlines()
    assert table[2] == f"{src / 'class1' / 'img1.bin'}\tin/class1/img1.bin\t7\tupload"
    query = any_bai(*upload, "--dryrun", "--query", "files[?action=='upload'].destination",
                    "-o", "tsv")  # fmt: skip
    assert query.stdout == "in/class1/img1.bin\n"


@pytest.mark.parametrize(("kind", "noun"), [("blob", "container"), ("file", "share")])
def test_download_batch_dryrun_makes_no_local_folder_and_lists_the_files(
    any_bai: Bai, tmp_path: Path, kind: str, noun: str
) -> None:
    any_bai("storage", "account", "create", "-n", "acct")
    any_bai("storage", noun, "create", "--account", "acct", "-n", "data")
    files = make_tree(tmp_path / "src", 6)
    any_bai("storage", kind, "upload-batch", "--account", "acct", "-d", "data",
            "-s", str(tmp_path / "src"))  # fmt: skip
    target = tmp_path / "dst" / "deeper"
    download = ("storage", kind, "download-batch", "--account", "acct", "-s", "data",
                "--source-path", "class1", "-d", str(target))  # fmt: skip

    plan = any_bai.json(*download, "--dryrun")
    assert (plan["dryrun"], plan["source"], plan["destination"]) == (True, "data/class1",
                                                                     str(target))  # fmt: skip
    assert plan["files"] == [
        {"source": f"class1/{name}", "destination": str(target / name),
         "size": len(files[f"class1/{name}"]), "action": "download"}
        for name in ("img1.bin", "img4.bin")
    ]  # fmt: skip
    assert not (tmp_path / "dst").exists()

    any_bai(*download)
    (target / "img1.bin").write_bytes(b"stale")
    again = any_bai.json(*download, "--dryrun", "--pattern", "img[14].bin")
    assert [(f["destination"], f["action"]) for f in again["files"]] == [
        (str(target / "img1.bin"), "download"),
        (str(target / "img4.bin"), "skip (unchanged)"),
    ]
    assert (target / "img1.bin").read_bytes() == b"stale"


def test_a_dry_run_refuses_the_names_a_real_run_refuses(any_bai: Bai, tmp_path: Path) -> None:
    any_bai("storage", "account", "create", "-n", "acct")
    any_bai("storage", "container", "create", "--account", "acct", "-n", "data")
    src = tmp_path / "src"
    src.mkdir()
    (src / "fine.txt").write_text("fine")
    (src / "we\\ird.txt").write_text("no name for a blob")
    upload = ("storage", "blob", "upload-batch", "--account", "acct", "-d", "data",
              "-s", str(src), "--no-progress", "-o", "json")  # fmt: skip
    dry = any_bai(*upload, "--dryrun", expect=1)
    real = any_bai(*upload, expect=1)
    planned, done = json.loads(dry.stdout), json.loads(real.stdout)
    assert (planned["filesToTransfer"], planned["filesFailed"]) == (1, 1)
    assert [f["path"] for f in planned["failures"]] == [f["path"] for f in done["failures"]]

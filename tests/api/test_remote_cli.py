"""``bai --server URL`` (``BAI_SERVER``): the same commands print the same output as in
process, against a real ``bai serve`` over the same installation."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import Bai
from job_files import upload_batch

from openbai.cli.main import cli

from .support import Server


class Cli:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(self, *argv: str, expect: int = 0) -> Result:
        result = CliRunner().invoke(cli, list(argv), env=self.env, catch_exceptions=False)
        assert result.exit_code == expect, (
            f"bai {shlex.join(argv)} exited {result.exit_code}\n{result.stdout}\n{result.stderr}"
        )
        return result


@pytest.fixture
def clis(bai: Bai, server: Server) -> tuple[Cli, Cli]:
    embedded = Cli(dict(bai.env))
    remote = Cli({**bai.env, "BAI_SERVER": server.url, "BAI_TOKEN": server.token})
    return embedded, remote


JOB = {
    "properties": {
        "nodeCount": 1,
        "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/afs",
        "inputDirectories": [{"id": "DATA", "path": "$AZ_BATCHAI_JOB_MOUNT_ROOT/bfs/in"}],
        "customToolkitSettings": {"commandLine": "cat $AZ_BATCHAI_INPUT_DATA/a.txt; echo done"},
    }
}


def test_same_output_embedded_and_through_the_server(clis: tuple[Cli, Cli], tmp_path: Path) -> None:
    embedded, remote = clis
    remote("workspace", "create", "-n", "ws")
    remote("experiment", "create", "-w", "ws", "-n", "exp")
    remote("cluster", "create", "-w", "ws", "-n", "c1", "--nodes", "1")
    remote("storage", "account", "create", "-n", "acct")
    remote("storage", "share", "create", "--account", "acct", "-n", "logs")
    remote("storage", "container", "create", "--account", "acct", "-n", "data")
    (tmp_path / "src" / "in").mkdir(parents=True)
    (tmp_path / "src" / "in" / "a.txt").write_text("hello from storage\n")
    assert upload_batch(remote, tmp_path / "src")["filesTransferred"] == 1
    # mtimes are kept through the server
    assert upload_batch(remote, tmp_path / "src")["filesSkipped"] == 1
    (tmp_path / "job.json").write_text(json.dumps(JOB))
    remote(
        "job",
        "create",
        "-w",
        "ws",
        "-e",
        "exp",
        "-n",
        "j1",
        "-c",
        "c1",
        "-f",
        str(tmp_path / "job.json"),
        "--storage-account-name",
        "acct",
        "--afs-name",
        "logs",
        "--bfs-name",
        "data",
    )
    remote("job", "wait", "-w", "ws", "-e", "exp", "-n", "j1", "--interval", "0.2")

    same = [
        ("workspace", "show", "-n", "ws"),
        ("workspace", "list"),
        ("workspace", "list", "-g", "default", "-o", "table"),
        ("experiment", "show", "-w", "ws", "-n", "exp"),
        ("experiment", "list", "-w", "ws", "-o", "tsv"),
        ("cluster", "show", "-w", "ws", "-n", "c1"),
        ("cluster", "list", "-w", "ws", "-o", "table"),
        ("job", "show", "-w", "ws", "-e", "exp", "-n", "j1"),
        ("job", "list", "-w", "ws", "-e", "exp", "-o", "table"),
        (
            "job",
            "file",
            "list",
            "-w",
            "ws",
            "-e",
            "exp",
            "-j",
            "j1",
            "--query",
            "[].[name,fileType,contentLength,lastModified]",
        ),
        ("job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "j1", "-f", "stdout.txt"),
        ("storage", "account", "list"),
        ("storage", "share", "list", "--account", "acct"),
        ("storage", "blob", "list", "--account", "acct", "--container-name", "data", "--recursive"),
        (
            "storage",
            "file",
            "list",
            "--account",
            "acct",
            "--share-name",
            "logs",
            "--recursive",
            "--query",
            "length(@)",
        ),
    ]
    for argv in same:
        assert remote(*argv).stdout == embedded(*argv).stdout, argv
    streamed = remote(
        "job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "j1", "-f", "stdout.txt"
    )
    assert streamed.stdout == "hello from storage\ndone\n"
    links = json.loads(remote("job", "file", "list", "-w", "ws", "-e", "exp", "-j", "j1").stdout)
    assert all(f["downloadUrl"].startswith("http://127.0.0.1") for f in links)

    remote(
        "storage",
        "blob",
        "download-batch",
        "--account",
        "acct",
        "-s",
        "data",
        "-d",
        str(tmp_path / "back"),
    )
    assert (tmp_path / "back" / "in" / "a.txt").read_text() == "hello from storage\n"


def test_same_errors_and_exit_codes(clis: tuple[Cli, Cli]) -> None:
    embedded, remote = clis
    for argv, code in [
        (("workspace", "show", "-n", "nope"), 3),
        (("experiment", "create", "-w", "nope", "-n", "exp"), 3),
        (("storage", "account", "create", "-n", "Bad_Name"), 2),
    ]:
        assert remote(*argv, expect=code).stderr == embedded(*argv, expect=code).stderr
    remote("workspace", "create", "-n", "ws")
    conflict = remote("workspace", "create", "-n", "ws", "-l", "elsewhere", expect=4)
    assert conflict.stderr.startswith("ERROR: workspace ws exists")
    remote("workspace", "delete", "-n", "ws", "-y")
    assert embedded("workspace", "list").stdout.strip() == "[]"


def test_wrong_token_and_unreachable_server(bai: Bai, server: Server) -> None:
    wrong = Cli({**bai.env, "BAI_SERVER": server.url, "BAI_TOKEN": "nope"})
    assert "bearer token is not valid" in wrong("workspace", "list", expect=5).stderr
    gone = Cli({**bai.env, "BAI_SERVER": "http://127.0.0.1:9", "BAI_TOKEN": "x"})
    assert "cannot reach the openbai server" in gone("workspace", "list", expect=1).stderr


def test_new_commands_print_the_same_both_ways(clis: tuple[Cli, Cli]) -> None:
    embedded, remote = clis
    remote("workspace", "create", "-n", "ws")
    remote("experiment", "create", "-w", "ws", "-n", "exp")
    remote("cluster", "create", "-w", "ws", "-n", "c1", "--nodes", "2")
    remote(
        "file-server", "create", "-w", "ws", "-n", "nfs", "-s", "STANDARD_D1",
        "--disk-count", "1", "--disk-size", "10", "--storage-sku", "Standard_LRS",
    )  # fmt: skip
    same = [
        ("cluster", "node", "list", "-w", "ws", "-c", "c1"),
        ("cluster", "node", "list", "-w", "ws", "-c", "c1", "-o", "table"),
        ("cluster", "file", "list", "-w", "ws", "-c", "c1"),
        ("cluster", "list", "-w", "ws", "-o", "table"),
        ("experiment", "list", "-w", "ws", "-o", "table"),
        ("file-server", "show", "-w", "ws", "-n", "nfs"),
        ("file-server", "list", "-w", "ws", "-o", "table"),
        ("usage", "show", "-l", "local"),
        ("usage", "show", "-l", "local", "-o", "table"),
    ]
    for argv in same:
        assert remote(*argv).stdout == embedded(*argv).stdout, argv
    for argv, code in [
        (("cluster", "node", "list", "-w", "ws", "-c", "nope"), 3),
        (("job", "node", "list", "-w", "ws", "-e", "exp", "-j", "nope"), 3),
        (("file-server", "show", "-w", "ws", "-n", "nope"), 3),
        (("file-server", "create", "-w", "ws", "-n", "nfs", "-s", "x", "--disk-count", "1",
          "--disk-size", "1", "--storage-sku", "Standard_LRS"), 4),
    ]:  # fmt: skip
        assert remote(*argv, expect=code).stderr == embedded(*argv, expect=code).stderr, argv
    remote("file-server", "delete", "-w", "ws", "-n", "nfs", "-y")
    remote("cluster", "delete", "-w", "ws", "-n", "c1", "-y")
    remote("workspace", "delete", "-n", "ws", "-y")
    assert embedded("workspace", "list").stdout.strip() == "[]"


def test_a_file_name_that_is_not_utf8_fails_alone_through_the_server(
    clis: tuple[Cli, Cli], bai: Bai, tmp_path: Path
) -> None:
    """A job on an embedded account can write a name that is no text: listed through the
    server with U+FFFD for its odd bytes, it is the one file a download fails."""
    embedded, remote = clis
    remote("storage", "account", "create", "-n", "acct")
    remote("storage", "container", "create", "--account", "acct", "-n", "data")
    stored = bai.home / "storage" / "acct" / "blob" / "data"
    (stored / "good.txt").write_text("good\n")
    with open(os.fsencode(stored) + b"/bad\xff.txt", "wb") as f:
        f.write(b"bad\n")
    listed = remote("storage", "blob", "list", "--account", "acct", "--container-name", "data")
    assert sorted(b["name"] for b in json.loads(listed.stdout)) == ["bad\ufffd.txt", "good.txt"]
    back = tmp_path / "back"
    failed = remote("storage", "blob", "download-batch", "--account", "acct", "-s", "data",
                    "-d", str(back), "--no-progress", expect=1)  # fmt: skip
    assert (back / "good.txt").read_text() == "good\n"
    report = json.loads(failed.stdout)
    assert (report["filesTransferred"], report["filesFailed"]) == (1, 1)
    assert [f["path"] for f in report["failures"]] == ["bad\ufffd.txt"]

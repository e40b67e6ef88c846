"""Read-only commands start fast: they import only what they use (no SQLAlchemy, pydantic,
rich or jmespath for a plain ``list``/``show``/``--help``), and the ORM-free reads they use
answer exactly what the services answer. Their speed is measured by ``python -m bench cli``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import Bai

from cli.conftest import job_file

#: what a plain read must not load (each is 10-250 ms of CPU at start-up)
HEAVY = {"sqlalchemy", "alembic", "pydantic", "pydantic_core", "rich", "jmespath", "httpx"}

_SHOW_MODULES = """
import atexit, json, sys
atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr))
sys.argv = ["bai", *sys.argv[1:]]
from openbai.cli.main import main
main()
"""


def imported(bai: Bai, *args: str) -> set[str]:
    """The top-level packages a fresh ``bai ARGS`` process imported."""
    done = subprocess.run(
        [sys.executable, "-c", _SHOW_MODULES, *args],
        env={**os.environ, **bai.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    modules = json.loads(done.stderr.strip().splitlines()[-1])
    return {m.split(".")[0] for m in modules}


@pytest.fixture
def finished(bai: Bai, tmp_path: Path) -> Bai:
    """ws/exp with one job that ran to its end (times, exit code) and one that failed."""
    bai("workspace", "create", "-n", "ws", "--tags", "team=vision", "--tags", "k=v")
    bai("experiment", "create", "-w", "ws", "-n", "exp")
    bai("experiment", "create", "-w", "ws", "-n", "empty")
    bai("cluster", "create", "-w", "ws", "-n", "c1", "--nodes", "1")
    bai("storage", "account", "create", "-n", "acct")
    bai("storage", "share", "create", "--account", "acct", "-n", "logs")
    for name, command in (("ok", "echo hi"), ("bad", "exit 3")):
        bai("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", name,
            "-f", job_file(tmp_path, command))  # fmt: skip
        bai.wait(name)
    return bai


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["job", "--help"],
        ["storage", "--help"],
        ["workspace", "list"],
        ["workspace", "show", "-n", "ws"],
        ["experiment", "list", "-w", "ws"],
        ["experiment", "show", "-w", "ws", "-n", "exp"],
        ["job", "list", "-w", "ws", "-e", "exp"],
        ["job", "show", "-w", "ws", "-e", "exp", "-n", "ok"],
        ["job", "list", "-w", "ws", "-e", "exp", "-o", "tsv"],
        ["job", "file", "list", "-w", "ws", "-e", "exp", "-j", "ok"],
        ["job", "file", "list", "-w", "ws", "-e", "exp", "-j", "ok", "-o", "table"],
        ["workspace", "list", "-o", "table"],
        ["job", "list", "-w", "ws", "-e", "exp", "-o", "table"],
    ],
    ids=" ".join,
)
def test_a_read_imports_no_orm_models_or_renderers(finished: Bai, args: list[str]) -> None:
    assert imported(finished, *args) & HEAVY == set()


def test_what_a_read_asks_for_is_imported_when_asked(finished: Bai) -> None:
    """The check above sees imports: jsonc loads rich, a query jmespath, a miss the ORM."""
    assert "rich" in imported(finished, "workspace", "list", "-o", "jsonc")
    assert "jmespath" in imported(finished, "workspace", "list", "--query", "[].name")
    # a job that is not there: the services answer, with their error (exit 3)
    done = subprocess.run(
        [sys.executable, "-c", _SHOW_MODULES, "job", "show", "-w", "ws", "-e", "exp", "-n", "no"],
        env={**os.environ, **finished.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3
    assert "The specified job no is not found in experiment exp" in done.stderr
    assert "sqlalchemy" in json.loads(done.stderr.strip().splitlines()[-1])


def test_quick_reads_answer_as_the_services(finished: Bai) -> None:
    from openbai.cli.client import EmbeddedClient
    from openbai.http.views import experiment_view, job_view, workspace_view
    from openbai.installation import App
    from openbai.services import jobs, workspaces
    from openbai.settings import Settings

    settings = Settings.load(finished.env)
    quick = EmbeddedClient(settings)
    answers: dict[str, Any] = {
        "workspaces": quick.list_workspaces(None),
        "workspaces of rg": quick.list_workspaces("default"),
        "workspaces of another rg": quick.list_workspaces("other"),
        "workspace": quick.get_workspace("default", "ws"),
        "experiments": quick.list_experiments("default", "ws"),
        "experiment": quick.get_experiment("default", "ws", "exp"),
        "jobs": quick.list_jobs("default", "ws", "exp"),
        "no jobs": quick.list_jobs("default", "ws", "empty"),
        "job": quick.get_job("default", "ws", "exp", "ok"),
        "failed job": quick.get_job("default", "ws", "exp", "bad"),
    }
    assert quick._app is None  # all of it answered without opening the installation

    app = App.open(settings)
    try:
        expected: dict[str, Any] = {
            "workspaces": [workspace_view(settings, r) for r in workspaces.list_workspaces(app)],
            "workspaces of rg": [
                workspace_view(settings, r) for r in workspaces.list_workspaces(app, "default")
            ],
            "workspaces of another rg": [],
            "workspace": workspace_view(settings, workspaces.get_workspace(app, "default", "ws")),
            "experiments": [
                experiment_view(settings, r)
                for r in workspaces.list_experiments(app, "default", "ws")
            ],
            "experiment": experiment_view(
                settings, workspaces.get_experiment(app, "default", "ws", "exp")
            ),
            "jobs": [job_view(settings, r) for r in jobs.list_jobs(app, "default", "ws", "exp")],
            "no jobs": [],
            "job": job_view(settings, jobs.get_job(app, "default", "ws", "exp", "ok")),
            "failed job": job_view(settings, jobs.get_job(app, "default", "ws", "exp", "bad")),
        }
    finally:
        app.close()
    assert answers == expected
    # and the answers are not empty shells: tags, times, exit codes came through
    assert answers["workspace"]["tags"] == {"team": "vision", "k": "v"}
    assert answers["failed job"]["properties"]["executionInfo"]["exitCode"] == 3
    assert answers["job"]["properties"]["executionInfo"]["endTime"].endswith("Z")


def test_a_miss_is_the_services_error(finished: Bai) -> None:
    bai = finished
    for args, message in [
        (("workspace", "show", "-n", "nope"), "workspace nope is not found in resource group"),
        (("experiment", "list", "-w", "nope"), "workspace nope is not found"),
        (("experiment", "show", "-w", "ws", "-n", "nope"), "experiment nope is not found"),
        (("job", "list", "-w", "ws", "-e", "nope"), "experiment nope is not found"),
        (("job", "show", "-w", "ws", "-e", "exp", "-n", "nope"), "job nope is not found"),
    ]:
        out = bai(*args, expect=3)
        assert message in out.stderr


def test_job_file_list_answers_as_the_services(finished: Bai) -> None:
    from openbai.cli.client import EmbeddedClient
    from openbai.installation import App
    from openbai.services import files
    from openbai.settings import Settings

    settings = Settings.load(finished.env)
    quick = EmbeddedClient(settings)
    listed = quick.list_job_files(
        "default", "ws", "exp", "ok", directory_id="stdouterr", path="", expiry=5
    )
    assert quick._app is None
    app = App.open(settings)
    try:
        expected = files.list_output_files(app, "default", "ws", "exp", "ok")
    finally:
        app.close()
    assert [f["name"] for f in listed] == ["execution.log", "stderr.txt", "stdout.txt"]
    assert listed == [
        {
            "name": f.name,
            "fileType": "file",
            "downloadUrl": f.url,
            "contentLength": f.size,
            "lastModified": f.modified.isoformat().replace("+00:00", "Z") if f.modified else None,
        }
        for f in expected
    ]
    stdout = next(f for f in listed if f["name"] == "stdout.txt")
    assert stdout["contentLength"] == 3  # "hi\n"


def test_a_job_file_list_miss_is_the_services_error(finished: Bai) -> None:
    base = ("job", "file", "list", "-w", "ws", "-e", "exp")
    for args, message in [
        ((*base, "-j", "nope"), "job nope is not found"),
        ((*base, "-j", "ok", "-d", "nope"), "outputDirectoryId nope is not defined for job ok"),
        ((*base, "-j", "ok", "--path", "x"), "directory 'x' does not exist in output directory"),
    ]:
        out = finished(*args, expect=3)
        assert message in out.stderr
    out = finished(*base, "-j", "ok", "--path", "../x", expect=2)
    assert "directory" in out.stderr


_RICH_TABLE = """
import json, sys
from rich.console import Console
from rich.table import Table
titles, rows = json.loads(sys.argv[1])
table = Table(box=None, header_style="bold", pad_edge=False)
for title in titles:
    table.add_column(title)
for row in rows:
    table.add_row(*row)
Console(width=max(100, Console().width), soft_wrap=True).print(table)
"""

_PLAIN_TABLE = """
import json, sys
from openbai.cli.table import plain_table
titles, rows = json.loads(sys.argv[1])
text = plain_table(titles, rows)
sys.stdout.write("NONE" if text is None else text)
"""

_TABLES: list[tuple[list[str], list[list[str]]]] = [
    (["Name", "State"], [["a", "running"], ["longer-name", ""]]),
    (["Result"], []),
    (["Result"], [["ws"]]),
    (["Name", "Modified"], [["stdout.txt", "2026-12-05T11:38:55.590010Z"]]),
    (["A", "B", "C"], [["", "", ""], ["x y", "1", "true"], ["  lead", "trail  ", "-"]]),
    (["Wide"], [["w" * 98]]),
    (["Wide", "Two"], [["w" * 95, "zz"]]),
    # not plain: rich renders them (markup, an emoji code, wide characters, too wide)
    (["Name"], [["[bold]x[/bold]"]]),
    (["Name"], [[":smile: and :100:"]]),
    (["Name"], [["naïve 名前"]]),
    (["Wide", "Two"], [["w" * 96, "zz"]]),
]


@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "terminal"])
def test_plain_tables_print_as_rich_does(terminal: bool) -> None:
    """Both renderers in the same environment, on a pseudo-terminal and off one: each table is
    printed the same by both, and the plain one declines the tables it cannot print exactly."""
    import pty

    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR", "NO_COLOR")}
    env["TERM"] = "xterm"

    def run(script: str, table: Any) -> str:
        argv = [sys.executable, "-c", script, json.dumps(table)]
        if not terminal:
            return subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
        leader, follower = pty.openpty()
        try:
            done = subprocess.run(
                argv, env=env, stdin=follower, stdout=follower, stderr=follower, timeout=60
            )
            os.close(follower)
            follower = -1
            chunks = []
            while True:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the pty's other side is closed: all was read
                    break
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            if follower != -1:
                os.close(follower)
            os.close(leader)
        assert done.returncode == 0
        return b"".join(chunks).decode().replace("\r\n", "\n")

    declined = 0
    for table in _TABLES:
        plain = run(_PLAIN_TABLE, table)
        if plain == "NONE":
            declined += 1
            continue
        assert plain == run(_RICH_TABLE, table), table
    assert declined == 4  # the last four

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
    ],
    ids=" ".join,
)
def test_a_read_imports_no_orm_models_or_renderers(finished: Bai, args: list[str]) -> None:
    assert imported(finished, *args) & HEAVY == set()


def test_what_a_read_asks_for_is_imported_when_asked(finished: Bai) -> None:
    """The check above sees imports: a table loads rich, a query jmespath, a miss the ORM."""
    assert "rich" in imported(finished, "workspace", "list", "-o", "table")
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

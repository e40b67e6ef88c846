"""Fixtures shared by the whole suite.

* ``bai``: run the ``bai`` command (click's CliRunner, in-process) against a fresh data dir;
  jobs run for real: the background dispatcher and the node runners are real processes.
* ``app``: the same installation, for service-level checks.
* ``database``: where that installation keeps its state: SQLite, and for the modules in
  :data:`ON_BOTH_DATABASES` also a fresh database of the PostgreSQL cluster named by
  ``OPENBAI_TEST_POSTGRES_URL`` (scripts/services/postgres.sh; skipped without it, except in CI).
* ``slurm_cluster``, ``azurite`` and ``samba`` come from the plugin modules next to this file.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner, Result

if TYPE_CHECKING:  # conftest loads no openbai module itself: its fixtures import them when used
    from openbai.installation import App
from openbai.store.database import administer

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

pytest_plugins = ["slurm_fixture", "azurite_fixture", "samba_fixture"]

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared").resolve()
SAMPLES = SHARED / "samples"
"""Batch AI's recipes and doc snippets, in ``../shared`` beside a checkout (not in a clone)."""


def require_samples() -> Path:
    """:data:`SAMPLES`; without them the test is skipped, except in CI (``CI`` set), where they
    are always present and a missing copy is a failure, as for the services' fixtures."""
    if not (SAMPLES / "batchai-recipes").is_dir() or not (SAMPLES / "doc-snippets").is_dir():
        reason = f"the Batch AI samples are not at {SAMPLES} (a clone without ../shared)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return SAMPLES


@pytest.fixture
def samples() -> Path:
    """The Batch AI samples directory (see :func:`require_samples`)."""
    return require_samples()


@dataclass
class Bai:
    """``bai(...)`` runs one command like a user would and returns click's Result."""

    home: Path
    env: dict[str, str]

    def __call__(self, *args: str, input: str | None = None, expect: int | None = 0) -> Result:
        from openbai.cli.main import cli

        argv = list(args[0].split()) if len(args) == 1 and " " in args[0] else list(args)
        result = CliRunner().invoke(cli, argv, env=self.env, input=input, catch_exceptions=False)
        if expect is not None and result.exit_code != expect:
            raise AssertionError(
                f"bai {shlex.join(argv)} exited {result.exit_code}, expected {expect}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def json(self, *args: str) -> Any:
        import json

        return json.loads(self(*args, "-o", "json").stdout)

    def wait(
        self, job: str, *, workspace: str = "ws", experiment: str = "exp", timeout: float = 60
    ) -> dict[str, Any]:
        """Poll until the job has ended; return its show output."""
        deadline = time.monotonic() + timeout
        while True:
            shown = self.json("job", "show", "-w", workspace, "-e", experiment, "-n", job)
            if shown["executionState"] in ("succeeded", "failed"):
                return dict(shown)
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job} still {shown['executionState']} after {timeout}s")
            time.sleep(0.1)

    def why(self, job: dict[str, Any], *, workspace: str = "ws", experiment: str = "exp") -> str:
        """What a test says when ``job`` did not end as it expected: its state, its errors, and
        the last lines of each file in its stdouterr folder (execution log included)."""
        where = ("-w", workspace, "-e", experiment, "-n", str(job["name"]))
        told = [f"{job['executionState']}: {json.dumps(job.get('executionInfo'), indent=1)}"]
        listed = self("job", "file", "list", *where, "-o", "json", expect=None)
        files = json.loads(listed.stdout) if listed.exit_code == 0 else []
        for entry in files:
            if entry.get("fileType") == "directory":
                continue
            shown = self("job", "file", "stream", *where, "-f", entry["name"], expect=None)
            tail = "\n".join(shown.stdout.splitlines()[-30:])
            told.append(f"--- {entry['name']} (last lines)\n{tail}")
        return "\n".join(told)


def _stop_dispatcher(home: Path) -> None:
    """Stop the installation's background dispatchers: the one holding the lock, and one still
    starting (a test that ends right after queueing a job is gone before its dispatcher has
    taken the lock; with a job that can never run, it would stay for good)."""
    import psutil

    from openbai.runtime.process_trees import kill_tree

    daemons = []
    for process in psutil.process_iter(["cmdline"]):
        if "openbai.scheduling.daemon" not in (process.info["cmdline"] or []):
            continue
        try:
            if process.environ().get("OPENBAI_HOME") == str(home):
                daemons.append(process.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    # each waited for until it is gone, so that none can start another runner after the sweep
    for pid in daemons:
        kill_tree(pid, grace=10)


def _kill_leftover_runners(home: Path) -> None:
    """Stop node runners (and their processes) a failed test may have left running."""
    import psutil

    for path in (home / "runs").glob("*/node-*.tasks"):
        for line in path.read_text().splitlines():
            _kill_tree(psutil, int(line.split()[0]))
    for path in (home / "runs").glob("*/node-*.runner"):
        _kill_tree(psutil, int(json.loads(path.read_text())[0]))


def _kill_tree(psutil: Any, pid: int) -> None:
    try:
        proc = psutil.Process(pid)
        for child in proc.children(recursive=True):
            child.kill()
        proc.kill()
    except psutil.NoSuchProcess:
        pass


#: test modules (or folders) whose installations run on SQLite and on PostgreSQL: the store, the
#: services and the main API resources, not the whole suite (each one runs twice)
ON_BOTH_DATABASES = (
    "tests/store/",
    "tests/services/",
    "tests/api/test_workspaces.py",
    "tests/api/test_jobs.py",
    "tests/api/test_clusters.py",
    "tests/cli/test_audit.py",
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    path = Path(str(metafunc.definition.path)).relative_to(REPO).as_posix()
    if "database" in metafunc.fixturenames and path.startswith(ON_BOTH_DATABASES):
        metafunc.parametrize("database", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """The URL of a database migrated to the newest schema on the test cluster, the template
    each test's database is copied from (copying is much faster than migrating)."""
    url = os.environ.get("OPENBAI_TEST_POSTGRES_URL")
    if not url:
        reason = "OPENBAI_TEST_POSTGRES_URL is not set (scripts/services/postgres.sh start)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    from openbai.store.database import open_database

    name = f"openbai_template_{os.getpid()}"
    administer(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    template = database_url_named(url, name)
    open_database(template).dispose()
    yield template
    administer(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url_named(url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture
def database(request: pytest.FixtureRequest) -> Iterator[str]:
    """The database URL of the test's installation: "" (SQLite in its data directory, the
    default) or a fresh PostgreSQL database, dropped after the test."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield ""
        return
    template = request.getfixturevalue("postgres_template")
    import uuid

    name = f"openbai_test_{uuid.uuid4().hex[:16]}"
    administer(template, f'CREATE DATABASE "{name}" TEMPLATE "{database_name(template)}"')
    yield database_url_named(template, name)
    administer(template, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_name(url: str) -> str:
    from sqlalchemy.engine import make_url

    return str(make_url(url).database)


@pytest.fixture
def bai_env(tmp_path: Path, database: str) -> dict[str, str]:
    home = tmp_path / "openbai"
    return {
        "OPENBAI_HOME": str(home),
        "OPENBAI_DATABASE_URL": database,
        "OPENBAI_DISPATCHER_IDLE_EXIT": "5",
        "BAI_SERVER": "",
        "AZURE_BATCHAI_STORAGE_ACCOUNT": "",
    }


@pytest.fixture
def bai(bai_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Bai]:
    for key, value in bai_env.items():
        monkeypatch.setenv(key, value)
    runner = Bai(Path(bai_env["OPENBAI_HOME"]), bai_env)
    yield runner
    _stop_dispatcher(runner.home)
    _kill_leftover_runners(runner.home)
    _stop_file_servers(runner.home)


def _stop_file_servers(home: Path) -> None:
    """Stop the NFS servers of the installation's file servers (they outlive commands)."""
    from openbai.storage.nfs_server import NfsServer

    for state in home.glob("file-servers/*/*/*/server.json"):
        NfsServer(state.parent).stop()


@pytest.fixture
def gates() -> Iterator[Path]:
    """A directory for files a test creates to let its jobs go on: outside /tmp and readable
    by anyone, so that a sandboxed job (its own empty /tmp, the host read-only, an
    unprivileged user) sees them appear."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="openbai-gates-", dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def app(bai: Bai) -> Iterator[App]:
    from openbai.installation import App
    from openbai.settings import Settings

    application = App.open(Settings.load(bai.env))
    yield application
    application.close()


@pytest.fixture
def workspace(bai: Bai) -> Bai:
    """An installation with workspace ``ws``, experiment ``exp`` and a 2-node cluster ``c1``."""
    bai("workspace", "create", "-n", "ws")
    bai("experiment", "create", "-w", "ws", "-n", "exp")
    bai("cluster", "create", "-w", "ws", "-n", "c1", "--nodes", "2")
    return bai

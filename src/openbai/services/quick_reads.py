"""Read-only answers straight from the SQLite file, for commands that must start fast.

``bai workspace list`` or ``bai job show`` would spend ~0.3 s of CPU importing SQLAlchemy's
ORM (20x a bare Python start) to run one SELECT. These reads run the same SELECTs through
the standard library's ``sqlite3`` on the same database file and return the same records as
the services; the ORM stays the one way to write, migrate and check.

A reader answers only what it can answer exactly: a name that is not found, a database that
is not SQLite or not created yet, or a schema it does not know (any ``sqlite3.Error``) gives
``None``, and the caller asks the services, which raise the usual error or migrate first.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from openbai.scheduling.locations import VolumeLocation
from openbai.services.records import ExperimentRecord, JobRecord, Provisioning, WorkspaceRecord
from openbai.settings import Settings
from openbai.vocabulary import ACTIVE_STATES

_PROVISIONING = "created_at, provisioning_state, provisioning_changed_at"
_JOB_COLUMNS = (
    "j.name, j.spec, j.cluster_ref, j.tool_type, j.output_segment, j.created_at,"
    " j.provisioning_state, j.provisioning_changed_at, j.execution_state,"
    " j.execution_changed_at, j.start_time, j.end_time, j.exit_code, j.errors"
)


def database_file(settings: Settings) -> Path | None:
    """The SQLite file of an installation, if it has one that exists (None otherwise)."""
    url = settings.db_url
    if not url.startswith("sqlite:///") or "?" in url:
        return None
    path = Path(url.removeprefix("sqlite:///"))
    return path if path.is_file() else None


class QuickReader:
    """SELECTs on one installation's SQLite file; each method opens one snapshot."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def of(cls, settings: Settings) -> QuickReader | None:
        path = database_file(settings)
        return None if path is None else cls(path)

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        # autocommit mode with an explicit BEGIN: the queries of one answer see one state,
        # and, as the ORM's readers, never take the write lock
        with closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as db:
            db.execute("PRAGMA busy_timeout=30000")
            db.execute("BEGIN")
            try:
                yield db
            finally:
                db.execute("COMMIT")

    def _answer(self, query: Any) -> Any:
        try:
            with self._snapshot() as db:
                return query(db)
        except sqlite3.Error:  # a schema this code does not know: the services answer
            return None

    # workspaces and experiments
    def list_workspaces(self, rg: str | None) -> list[WorkspaceRecord] | None:
        def query(db: sqlite3.Connection) -> list[WorkspaceRecord]:
            sql = f"SELECT resource_group, name, location, tags, {_PROVISIONING} FROM workspaces"
            args: tuple[str, ...] = ()
            if rg is not None:
                sql += " WHERE resource_group = ?"
                args = (rg,)
            rows = db.execute(sql + " ORDER BY resource_group, name", args)
            return [_workspace(row) for row in rows]

        result: list[WorkspaceRecord] | None = self._answer(query)
        return result

    def get_workspace(self, rg: str, name: str) -> WorkspaceRecord | None:
        def query(db: sqlite3.Connection) -> WorkspaceRecord | None:
            row = db.execute(
                f"SELECT resource_group, name, location, tags, {_PROVISIONING} FROM workspaces"
                " WHERE resource_group = ? AND name = ?",
                (rg, name),
            ).fetchone()
            return None if row is None else _workspace(row)

        result: WorkspaceRecord | None = self._answer(query)
        return result

    def list_experiments(self, rg: str, ws: str) -> list[ExperimentRecord] | None:
        def query(db: sqlite3.Connection) -> list[ExperimentRecord] | None:
            workspace = _workspace_id(db, rg, ws)
            if workspace is None:
                return None
            rows = db.execute(
                f"SELECT name, {_PROVISIONING} FROM experiments WHERE workspace_id = ?"
                " ORDER BY name",
                (workspace,),
            )
            return [ExperimentRecord(rg, ws, row[0], _provisioning(row[1:4])) for row in rows]

        result: list[ExperimentRecord] | None = self._answer(query)
        return result

    def get_experiment(self, rg: str, ws: str, name: str) -> ExperimentRecord | None:
        def query(db: sqlite3.Connection) -> ExperimentRecord | None:
            row = db.execute(
                "SELECT e.name, e.created_at, e.provisioning_state, e.provisioning_changed_at"
                " FROM experiments e JOIN workspaces w ON w.id = e.workspace_id"
                " WHERE w.resource_group = ? AND w.name = ? AND e.name = ?",
                (rg, ws, name),
            ).fetchone()
            return (
                None if row is None else ExperimentRecord(rg, ws, row[0], _provisioning(row[1:4]))
            )

        result: ExperimentRecord | None = self._answer(query)
        return result

    # jobs
    def list_jobs(self, rg: str, ws: str, exp: str) -> list[JobRecord] | None:
        def query(db: sqlite3.Connection) -> list[JobRecord] | None:
            experiment = _experiment_id(db, rg, ws, exp)
            if experiment is None:
                return None
            rows = db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs j WHERE j.experiment_id = ? ORDER BY j.id",
                (experiment,),
            )
            return [_job(rg, ws, exp, row) for row in rows]

        result: list[JobRecord] | None = self._answer(query)
        return result

    def get_job(self, rg: str, ws: str, exp: str, name: str) -> JobRecord | None:
        def query(db: sqlite3.Connection) -> JobRecord | None:
            experiment = _experiment_id(db, rg, ws, exp)
            if experiment is None:
                return None
            row = db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs j WHERE j.experiment_id = ? AND j.name = ?",
                (experiment, name),
            ).fetchone()
            return None if row is None else _job(rg, ws, exp, row)

        result: JobRecord | None = self._answer(query)
        return result

    def output_location(
        self, rg: str, ws: str, exp: str, job: str, directory_id: str
    ) -> VolumeLocation | None:
        """Where a job's output directory ``directory_id`` (or ``stdouterr``) is in storage, as
        the services' ``location_of`` finds it; None for a job or a directory id that is not
        there, or a directory on no volume (the services give their error)."""

        def query(db: sqlite3.Connection) -> VolumeLocation | None:
            experiment = _experiment_id(db, rg, ws, exp)
            if experiment is None:
                return None
            row = db.execute(
                "SELECT locations FROM jobs WHERE experiment_id = ? AND name = ?",
                (experiment, job),
            ).fetchone()
            data = None if row is None else (_json(row[0]) or {}).get(directory_id)
            return VolumeLocation.from_json(data) if isinstance(data, dict) else None

        try:
            result: VolumeLocation | None = self._answer(query)
        except (KeyError, ValueError, AttributeError):  # a shape it does not know
            return None
        return result

    # storage accounts
    def account_options(self, name: str) -> tuple[str, dict[str, Any], str | None] | None:
        """A storage account's kind, options and sealed secrets (still sealed), as stored;
        None for a name not in the table (file servers and mount commands are named by
        prefixes the services resolve, a missing account gets their error)."""

        def query(db: sqlite3.Connection) -> tuple[str, dict[str, Any], str | None] | None:
            row = db.execute(
                "SELECT kind, options, sealed_secrets FROM storage_accounts WHERE name = ?",
                (name,),
            ).fetchone()
            options = None if row is None else _json(row[1])
            if not isinstance(options, dict):
                return None
            return str(row[0]), options, row[2]

        answer: tuple[str, dict[str, Any], str | None] | None = self._answer(query)
        return answer

    def has_active_jobs(self) -> bool | None:
        """Whether any job is queued or running (None: ask the services)."""

        def query(db: sqlite3.Connection) -> bool:
            marks = ", ".join("?" for _ in ACTIVE_STATES)
            sql = f"SELECT 1 FROM jobs WHERE execution_state IN ({marks}) LIMIT 1"
            return db.execute(sql, tuple(ACTIVE_STATES)).fetchone() is not None

        result: bool | None = self._answer(query)
        return result


def _workspace_id(db: sqlite3.Connection, rg: str, ws: str) -> int | None:
    row = db.execute(
        "SELECT id FROM workspaces WHERE resource_group = ? AND name = ?", (rg, ws)
    ).fetchone()
    return None if row is None else int(row[0])


def _experiment_id(db: sqlite3.Connection, rg: str, ws: str, exp: str) -> int | None:
    row = db.execute(
        "SELECT e.id FROM experiments e JOIN workspaces w ON w.id = e.workspace_id"
        " WHERE w.resource_group = ? AND w.name = ? AND e.name = ?",
        (rg, ws, exp),
    ).fetchone()
    return None if row is None else int(row[0])


def _time(value: str | None) -> datetime | None:
    """A time as SQLAlchemy's DateTime keeps it on SQLite (naive UTC text) made aware."""
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def _utc(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _json(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def _provisioning(row: Any) -> Provisioning:
    created, state, changed = row
    return Provisioning(_utc(created), state, _utc(changed))


def _workspace(row: Any) -> WorkspaceRecord:
    rg, name, location, tags = row[:4]
    return WorkspaceRecord(rg, name, location, dict(_json(tags) or {}), _provisioning(row[4:7]))


def _job(rg: str, ws: str, exp: str, row: Any) -> JobRecord:
    (name, spec, cluster_ref, tool_type, segment, created, state, changed) = row[:8]
    (execution_state, execution_changed, start, end, exit_code, errors) = row[8:]
    return JobRecord(
        rg,
        ws,
        exp,
        name,
        dict(_json(spec) or {}),
        cluster_ref,
        tool_type,
        segment,
        _provisioning((created, state, changed)),
        execution_state,
        _utc(execution_changed),
        _time(start),
        _time(end),
        exit_code,
        list(_json(errors) or []),
    )

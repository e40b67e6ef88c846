"""Opening the database: engine settings, schema migrations, sessions.

SQLite runs in WAL mode with a busy timeout so that the CLI, the dispatcher and the REST
server can use one file at once. A shared server may keep its state in PostgreSQL instead
(``postgresql+psycopg://`` URLs): the same migrations, and writers serialized the same way.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import Executable

MIGRATIONS = Path(__file__).with_name("migrations")
#: the newest migration, read off the file names (``000N_topic.py`` holds revision ``000N``):
#: checked on open so that alembic is only loaded when needed
HEAD_REVISION = max(p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))


class Database:
    def __init__(self, url: str):
        self.url = url
        self.engine = _make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._reader_engine = self.engine.execution_options(openbai_read=True)
        self._readers = sessionmaker(self._reader_engine, expire_on_commit=False)
        # one SELECT is consistent by itself: on SQLite no BEGIN is sent before it (a third
        # of the SQL a request's token check ran)
        self._single_reads = self.engine.execution_options(openbai_read="single")
        if self.engine.dialect.name == "postgresql":  # nor BEGIN and ROLLBACK round trips
            self._single_reads = self._single_reads.execution_options(isolation_level="AUTOCOMMIT")

    def migrate(self) -> None:
        """Bring the schema to the newest revision (cheap when it already is)."""
        if self._current_revision() == HEAD_REVISION:
            return
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def _current_revision(self) -> str | None:
        with self.engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
            return None if row is None else str(row[0])

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A writing session in one transaction: committed on success, rolled back on error.

        On SQLite it takes the write lock when it begins, so concurrent writers queue instead
        of failing; never open one inside another in the same thread.
        """
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only session: never blocks writers, may be opened inside a writing one."""
        with self._readers() as session, session.begin():
            yield session

    def first(self, statement: Executable, params: Mapping[str, Any]) -> Row[Any] | None:
        """The first row of a read-only ``statement``, on a connection without an ORM
        session: for the reads every request makes (a token, a job), where the session's
        bookkeeping cost more than the query."""
        with self._single_reads.connect() as connection:
            return connection.execute(statement, dict(params)).first()

    def all(self, statement: Executable, params: Mapping[str, Any]) -> Sequence[Row[Any]]:
        """Every row of a read-only ``statement``, like :meth:`first` (a page of a list)."""
        with self._single_reads.connect() as connection:
            return connection.execute(statement, dict(params)).all()

    def append(self, statement: Executable, params: Mapping[str, Any]) -> None:
        """Run one INSERT that no other writer waits for or is ordered with (an audit
        entry), committed by itself: without a transaction of its own or the writers' lock,
        one round trip on PostgreSQL where a writing session costs four."""
        with self._single_reads.connect() as connection:
            connection.execute(statement, dict(params))
            connection.commit()

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(url: str) -> Database:
    db = Database(url)
    db.migrate()
    return db


def _create_private(url: str) -> None:
    """Create a new SQLite file readable by its owner only (its WAL and shared-memory files
    get the same mode)."""
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if database and database != ":memory:":
        path = Path(database)
        if path.parent.is_dir():
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
            os.chmod(path, 0o600)


#: the key of the advisory lock every writing transaction on PostgreSQL holds until it ends
WRITER_LOCK = 0x0BA1


#: bytes.translate table keeping ASCII digits (as 0) and blanking the rest: 19 digits in a
#: row may be an integer beyond 64 bits, which orjson would read as a float (a C scan; a
#: regular expression took 4x orjson's own time)
_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_NUMBER = b"0" * 19


def json_loads(text: str | bytes) -> Any:
    """A JSON column's value: orjson reads a job's spec in a third of ``json.loads``' time (a
    page of 1,000 jobs decodes 2,000 documents). ``json.loads`` reads what orjson would read
    otherwise (an integer beyond 64 bits, as a float) or refuses (``NaN``), exactly as before."""
    raw = text.encode(errors="surrogatepass") if isinstance(text, str) else text
    if _LONG_NUMBER not in raw.translate(_DIGITS):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def _make_engine(url: str) -> Engine:
    if url.startswith("postgresql"):
        return _postgres_engine(url)
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, json_deserializer=json_loads)
    _create_private(url)
    # as many kept connections as the server has request threads (see _postgres_engine)
    engine = create_engine(
        url,
        connect_args={"timeout": 30, "check_same_thread": False},
        pool_size=40,
        max_overflow=10,
        json_deserializer=json_loads,
    )

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, open transactions, and open them as writers up front:
        # a reader that later writes would otherwise fail with "database is locked".
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # deleted rows (secrets among them) are overwritten, not left in free pages
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        options = connection.get_execution_options()
        read = options.get("openbai_read")
        if read != "single":  # Database.first: one SELECT, consistent by itself
            connection.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")

    return engine


def _postgres_engine(url: str) -> Engine:
    # Kept connections, as many as the server has request threads (anyio's 40): one opened
    # past the kept ones is closed after each use, and a new one costs a backend process and a
    # SCRAM exchange, which under load took more than the request itself. Opened lazily: a
    # CLI command holds one or two. PostgreSQL's default max_connections is 100.
    engine = create_engine(
        url,
        pool_size=40,
        max_overflow=10,
        pool_timeout=30,
        json_deserializer=json_loads,
    )
    _ping_when_idle(engine)

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # The services were written against SQLite, whose writers queue behind one lock (BEGIN
        # IMMEDIATE): check-then-write steps rely on it. One transaction-scoped advisory lock
        # gives writers the same order here; readers never take it.
        if not connection.get_execution_options().get("openbai_read"):
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITER_LOCK})")

    return engine


#: a kept connection unused this long is pinged before it is handed out again
IDLE_BEFORE_PING_SECONDS = 5.0


def _ping_when_idle(engine: Engine) -> None:
    """Check a kept connection before use only when it has been idle a while. A ping on every
    checkout (``pool_pre_ping``) is a round trip as long as a GET's own query; a connection
    in steady use that the server dropped (a restart) fails its request, and SQLAlchemy then
    invalidates every connection opened before it, so the next requests get fresh ones."""

    @event.listens_for(engine.pool, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["openbai_idle_since"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("openbai_idle_since")
        if since is None or time.monotonic() - since < IDLE_BEFORE_PING_SECONDS:
            return
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            if not dbapi_connection.autocommit:
                dbapi_connection.rollback()
        except Exception as exc:  # the pool replaces the connection and tries again
            raise DisconnectionError(str(exc)) from exc


def administer(url: str, *statements: str) -> None:
    """Run statements that may not run inside a transaction (``CREATE``/``DROP DATABASE``) on
    the PostgreSQL server of ``url``, connected to its database."""
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    with psycopg.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.username,
        password=parsed.password,
        dbname=parsed.database,
        autocommit=True,
    ) as connection:
        for statement in statements:
            connection.execute(statement.encode())

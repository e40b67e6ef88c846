"""The kept connections of a PostgreSQL store when the server goes away under them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from conftest import database_name, database_url_named
from sqlalchemy import insert, select

from openbai.store import database as store_database
from openbai.store.database import Database, administer
from openbai.store.models import Workspace


@pytest.fixture
def postgres(postgres_template: str) -> Iterator[str]:
    name = f"openbai_test_{uuid.uuid4().hex[:16]}"
    administer(
        postgres_template, f'CREATE DATABASE "{name}" TEMPLATE "{database_name(postgres_template)}"'
    )
    yield database_url_named(postgres_template, name)
    administer(postgres_template, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_connections_a_restart_dropped_are_replaced_without_an_error(
    postgres: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(postgres)
    names = select(Workspace.name)
    with db.session() as s:
        s.execute(
            insert(Workspace), [{"resource_group": "rg", "name": "kept", "location": "local"}]
        )
    assert db.all(names, {}) == [("kept",)]  # the pool now keeps connections
    # what a restart does to them: every backend of this database ends
    administer(
        postgres,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        f" WHERE datname = '{database_name(postgres)}' AND pid <> pg_backend_pid()",
    )
    # a connection idle past the threshold is checked before use, and replaced
    monkeypatch.setattr(store_database, "IDLE_BEFORE_PING_SECONDS", 0.0)
    assert db.all(names, {}) == [("kept",)]
    with db.session() as s:
        s.execute(
            insert(Workspace), [{"resource_group": "rg", "name": "after", "location": "local"}]
        )
    with db.reading() as s:
        assert set(s.scalars(names)) == {"kept", "after"}
    db.dispose()

"""The store on both databases it supports: SQLite (the default) and PostgreSQL (a shared
server's, ``OPENBAI_DATABASE_URL``): the migrations both ways, the column types as the services
use them, writers that do not lose each other's updates, and the setting itself."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import pytest
from conftest import Bai
from sqlalchemy import inspect, select, update
from sqlalchemy.engine import make_url

from openbai.installation import App
from openbai.services import workspaces
from openbai.store.database import HEAD_REVISION, MIGRATIONS
from openbai.store.models import Base, Workspace


def _tables(app: App) -> set[str]:
    with app.db.engine.connect() as connection:
        return set(inspect(connection).get_table_names())


def test_migrations_run_down_to_nothing_and_up_to_the_newest(app: App) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert set(Base.metadata.tables) <= _tables(app)
    with app.db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert _tables(app) & set(Base.metadata.tables) == set()
    app.db.migrate()
    assert set(Base.metadata.tables) <= _tables(app)
    assert app.db._current_revision() == HEAD_REVISION


def test_json_and_longest_names_round_trip(app: App, bai: Bai) -> None:
    name = "w" * 64  # the longest a workspace name may be: the column must hold it
    tags = {"team": "vision", "ünïcode": "✓", "nested": "[1, 2]"}
    workspaces.create_workspace(app, "rg", name, {"location": "local", "tags": tags})
    shown = bai.json("workspace", "show", "-g", "rg", "-n", name)
    assert shown["name"] == name
    assert shown["tags"] == tags


def test_json_columns_read_back_numbers_exactly(app: App) -> None:
    # orjson reads these two differently (a float, an error): the store must not
    tags = {
        "big": 2**70 + 1,
        "small": -(2**63) - 1,
        "float": 0.1,
        "digits": "1" * 40,
        "✓": [1.5e300],
    }
    workspaces.create_workspace(app, "rg", "ws", {"location": "local"})
    with app.db.session() as s:
        s.execute(update(Workspace).where(Workspace.name == "ws").values(tags=tags))
    where = select(Workspace.tags).where(Workspace.name == "ws")
    assert app.db.first(where, {}) == (tags,)
    if app.db.engine.dialect.name != "sqlite":
        return  # PostgreSQL's json type refuses NaN itself
    with app.db.session() as s:
        s.execute(update(Workspace).where(Workspace.name == "ws").values(tags={"n": math.nan}))
    read = app.db.first(where, {})
    assert read is not None and math.isnan(read[0]["n"])


def test_concurrent_writers_lose_no_update(app: App) -> None:
    """Read-modify-write in writing sessions from many threads: each one sees the others'
    commits (the services rely on this for their check-then-write steps)."""
    workspaces.create_workspace(app, "rg", "counted", {"location": "local"})
    threads, rounds = 6, 15
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            for _ in range(rounds):
                with app.db.session() as session:
                    row = session.scalars(select(Workspace).filter_by(name="counted")).one()
                    row.tags = {"count": str(int(row.tags.get("count", "0")) + 1)}
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    workers = [threading.Thread(target=bump) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    with app.db.reading() as session:
        row = session.scalars(select(Workspace).filter_by(name="counted")).one()
        assert row.tags == {"count": str(threads * rounds)}


def test_config_show_names_the_database_kind(bai: Bai, database: str) -> None:
    shown = bai.json("config", "show")
    assert shown["database"] == ("postgresql+psycopg" if database else "sqlite")


@pytest.mark.parametrize("url", ["mysql://u:p@h/db", "not a url", "postgresql://"])
def test_a_database_url_of_no_known_kind_is_refused(bai: Bai, url: str) -> None:
    result = bai("config", "show", expect=None)
    assert result.exit_code == 0
    bai.env["OPENBAI_DATABASE_URL"] = url
    refused = bai("config", "show", expect=2)
    assert "OPENBAI_DATABASE_URL" in refused.stderr
    assert "p@h" not in refused.stderr  # a password in the URL is never echoed


def _workspace_names(bai: Bai) -> list[str]:
    return sorted(w["name"] for w in bai.json("workspace", "list"))


def test_config_set_moves_the_installation_to_another_database(
    bai: Bai, database: str, tmp_path: Path
) -> None:
    target = database or f"sqlite:///{tmp_path / 'elsewhere.db'}"
    bai.env["OPENBAI_DATABASE_URL"] = ""  # the installation's own setting, not the test's
    bai("workspace", "create", "-n", "before")
    bai("config", "set", "--database", target)
    config = bai.home / "config.json"
    assert config.stat().st_mode & 0o777 == 0o600  # the URL may hold a password
    assert json.loads(config.read_text())["databaseUrl"] == target
    bai("workspace", "create", "-n", "after")
    assert _workspace_names(bai) == ["after"]
    bai("config", "set", "--database", "")
    assert _workspace_names(bai) == ["before"]


def test_config_set_refuses_a_database_it_cannot_open(
    bai: Bai, database: str, tmp_path: Path
) -> None:
    if database:
        wrong = make_url(database).set(password="not-the-password")
        bad = wrong.render_as_string(hide_password=False)
    else:
        bad = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}"
    bai.env["OPENBAI_DATABASE_URL"] = ""
    bai("workspace", "create", "-n", "kept")
    refused = bai("config", "set", "--database", bad, expect=2)
    assert "--database" in refused.stderr
    assert "not-the-password" not in refused.stderr
    assert "databaseUrl" not in json.loads((bai.home / "config.json").read_text())
    assert _workspace_names(bai) == ["kept"]


def test_serve_refuses_a_database_url_of_no_known_kind(bai: Bai) -> None:
    refused = bai("serve", "--port", "0", "--database", "mysql://u:secret@h/db", expect=2)
    assert "--database" in refused.stderr
    assert "secret" not in refused.stderr

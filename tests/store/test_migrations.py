"""The migrations form one line, 0001 → 0002 → …, each named for its revision, so that the
newest file name is the head every installation is brought to."""

from __future__ import annotations

import ast
from pathlib import Path

from openbai.store.database import HEAD_REVISION, MIGRATIONS


def declared(path: Path) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0]
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                assert node.value is not None
                values[target.id] = ast.literal_eval(node.value)
    return values


def test_the_migrations_are_one_line_named_by_revision() -> None:
    files = sorted((MIGRATIONS / "versions").glob("[0-9]*_*.py"))
    previous = None
    for path in files:
        values = declared(path)
        assert values["revision"] == path.name.split("_", 1)[0], path.name
        assert values["down_revision"] == previous, f"{path.name} does not follow {previous}"
        previous = values["revision"]
    assert previous == HEAD_REVISION

"""openbai's modules start from bytecode the install compiled (``scripts/venv.sh``).

An editable install compiles nothing, and where ``PYTHONDONTWRITEBYTECODE`` is set (as on
these machines) no import writes bytecode either: every ``bai`` command, node runner and mount
daemon would compile each module it imports, every time it starts (a node runner ~1.4x its
CPU). A module added since the last ``scripts/venv.sh`` shows here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import openbai


def test_every_module_of_openbai_has_its_bytecode() -> None:
    root = Path(openbai.__file__).parent
    modules = sorted(root.rglob("*.py"))
    assert len(modules) > 100
    missing = [
        str(module.relative_to(root))
        for module in modules
        if not Path(importlib.util.cache_from_source(str(module))).is_file()
    ]
    assert missing == [], "run scripts/venv.sh (it compiles them)"

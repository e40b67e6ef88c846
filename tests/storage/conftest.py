"""Fixtures for the storage tests: Azurite comes from the ``azurite_fixture`` plugin module."""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from azurite_fixture import azurite  # noqa: E402, F401

"""RemoteClient offers what EmbeddedClient offers, with the same parameters."""

from __future__ import annotations

import inspect

from openbai.cli.client import EmbeddedClient
from openbai.cli.remote import RemoteClient


def test_same_methods_and_parameters() -> None:
    for name, member in inspect.getmembers(EmbeddedClient):
        if name.startswith("_") or name == "app":
            continue
        remote = getattr(RemoteClient, name, None)
        assert remote is not None, f"RemoteClient has no {name}"
        if inspect.isfunction(member):
            expected = list(inspect.signature(member).parameters)
            assert list(inspect.signature(remote).parameters) == expected, name

"""``BAI_SERVER`` without ``BAI_TOKEN``: the CLI says which variable is missing before it
sends anything."""

from __future__ import annotations

from conftest import Bai


def test_a_server_without_a_token_asks_for_bai_token(bai: Bai) -> None:
    remote = Bai(bai.home, {**bai.env, "BAI_SERVER": "http://127.0.0.1:9", "BAI_TOKEN": ""})
    refused = remote("workspace", "list", expect=5)
    assert "set BAI_TOKEN (or --token)" in refused.stderr
    assert "bai token create -n NAME" in refused.stderr
    remote("workspace", "delete", "-n", "ws", "-y", expect=5)

"""The storage registry: names to classes, account kinds, install hints, entry points."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from openbai.errors import SpecError, StorageError
from openbai.storage import registry
from openbai.storage.base import StorageBackend, VolumeKind
from openbai.storage.local import LocalStorage


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    registry.backend_class.cache_clear()
    yield
    registry.backend_class.cache_clear()


def test_table_is_sorted() -> None:
    assert list(registry.BACKENDS) == sorted(registry.BACKENDS)
    assert list(registry.ACCOUNT_KINDS) == sorted(registry.ACCOUNT_KINDS)


@pytest.mark.parametrize("name", sorted(registry.BACKENDS))
def test_every_entry_imports(name: str) -> None:
    cls = registry.backend_class(name)
    assert issubclass(cls, StorageBackend)
    assert cls.name == name


def test_account_kinds_name_known_backends() -> None:
    used = {name for kinds in registry.ACCOUNT_KINDS.values() for name in kinds.values()}
    assert used <= set(registry.BACKENDS)
    for kinds in registry.ACCOUNT_KINDS.values():
        assert set(kinds) == set(VolumeKind)


def test_backend_for_a_local_account(tmp_path: Path) -> None:
    backend = registry.backend_for("acct", "local", VolumeKind.FILE, {"root": str(tmp_path)})
    assert isinstance(backend, LocalStorage)
    assert backend.kind is VolumeKind.FILE


def test_unknown_account_kind() -> None:
    with pytest.raises(SpecError) as info:
        registry.backend_for("acct", "ftp", VolumeKind.BLOB, {})
    assert info.value.target == "kind"


def test_unknown_backend() -> None:
    with pytest.raises(StorageError, match="no storage backend named 'nope'"):
        registry.backend_class("nope")


def test_missing_sdk_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    """azure_blob imports its SDK when it first calls it (a tree transfer never does): that
    call, not the backend's choice, tells what to install."""
    monkeypatch.setitem(sys.modules, "azure.storage.blob", None)
    backend = registry.backend_for(
        "acct", "azure", VolumeKind.BLOB, {"account_key": "a2V5", "blob_endpoint": "127.0.0.1:9"}
    )
    with pytest.raises(StorageError, match=r"pip install 'openbai\[azure\]'"):
        backend.list_volumes()


def test_missing_backend_package_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "openbai.storage.smb", raising=False)
    monkeypatch.setitem(sys.modules, "smbclient", None)
    with pytest.raises(StorageError, match=r"'smbclient': pip install 'openbai\[azure\]'"):
        registry.backend_class("smb")


def test_entry_point_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    found = [EntryPoint("mine", "openbai.storage.local:LocalStorage", registry.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(
        registry, "entry_points", lambda group: found if group == registry.ENTRY_POINT_GROUP else []
    )
    assert "mine" in registry.backend_names()
    assert registry.backend_class("mine") is LocalStorage


def test_entry_point_must_be_a_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    found = [EntryPoint("bad", "pathlib:Path", registry.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(registry, "entry_points", lambda group: found)
    with pytest.raises(StorageError, match="not a StorageBackend"):
        registry.backend_class("bad")


def test_mount_only_kinds_are_mounted_by_a_known_mounter_and_are_no_accounts() -> None:
    from openbai.mounts import registry as mounts

    for kind, key in registry.MOUNT_ONLY_KINDS.items():
        assert kind not in registry.ACCOUNT_KINDS  # nothing would list or stream its files
        assert key in mounts.MOUNTERS
        assert registry.mounter_key(kind, VolumeKind.FILE) == key
    assert registry.mounter_key("azure", VolumeKind.FILE) == "smb"

"""``bai cluster create --use-auto-storage`` through a real ``bai serve``: the auto-storage
account is made only for a caller who may create storage accounts (an owner token for every
workspace, as ``storage account create``), only once everything else is checked, and in the
audit log as a direct create is; a create that fails leaves no account behind."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import Bai

from openbai.errors import ConflictError
from openbai.installation import App
from openbai.services import accounts, audit, clusters, tokens
from openbai.services.clusters import AUTO_STORAGE_RESOURCE_GROUP
from openbai.services.tokens import Role
from openbai.settings import Settings
from openbai.storage.base import VolumeKind

from .support import BAI, Server


@pytest.fixture
def installation(bai: Bai) -> Iterator[App]:
    bai("workspace", "create", "-n", "ws1")
    bai("cluster", "create", "-w", "ws1", "-n", "c1", "--nodes", "0")
    app = App.open(Settings.load({**os.environ, **bai.env}))
    yield app
    app.close()


def remote(bai: Bai, server: Server, secret: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **bai.env, "BAI_SERVER": server.url, "BAI_TOKEN": secret}
    return subprocess.run(
        [BAI, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def auto_create(
    bai: Bai, server: Server, secret: str, name: str
) -> subprocess.CompletedProcess[str]:
    return remote(bai, server, secret, "cluster", "create", "-w", "ws1", "-n", name,
                  "--nodes", "0", "--use-auto-storage", "-o", "none")  # fmt: skip


def auto_accounts(app: App) -> list[str]:
    return [
        a.name
        for a in accounts.list_accounts(app)
        if a.resource_group == AUTO_STORAGE_RESOURCE_GROUP
    ]


def account_folders(app: App) -> list[str]:
    root = Path(app.settings.storage_root)
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def cluster_names(app: App) -> list[str]:
    return [c.name for c in clusters.list_clusters(app, "default", "ws1")]


def audited(server: Server, action: str) -> list[dict[str, object]]:
    entries = httpx.get(
        f"{server.url}/openbai/audit",
        headers={"Authorization": f"Bearer {server.token}"},
        params={"action": action},
        timeout=30,
    ).json()["value"]
    return [e for e in entries if e["action"] == action]


def test_a_contributor_may_not_make_the_auto_storage_account(
    bai: Bai, installation: App, server: Server
) -> None:
    contributor = tokens.create_token(
        installation, "contrib", role=Role.CONTRIBUTOR, workspaces=["ws1"]
    )[1]
    folders = account_folders(installation)
    # as a direct storage account create is refused ...
    direct = remote(bai, server, contributor, "storage", "account", "create", "-n", "mine")
    assert direct.returncode == 5 and "owner" in direct.stderr, direct.stderr
    # ... so is the one auto-storage would make: for a new cluster and for a name taken
    for name in ("c2", "c1"):
        refused = auto_create(bai, server, contributor, name)
        assert refused.returncode == 5, refused.stderr
        assert "auto-storage" in refused.stderr and "owner" in refused.stderr, refused.stderr
    assert auto_accounts(installation) == []
    assert account_folders(installation) == folders
    assert cluster_names(installation) == ["c1"]
    # the direct create's refusal alone
    created = audited(server, "storage.account.create")
    assert [(e["token"], e["status"]) for e in created] == [("contrib", 403)]
    assert [e["status"] for e in audited(server, "cluster.create")] == [403, 403]


def test_a_cluster_create_that_fails_makes_no_account(
    bai: Bai, installation: App, server: Server
) -> None:
    folders = account_folders(installation)
    taken = auto_create(bai, server, server.token, "c1")
    assert taken.returncode != 0 and "already exists" in taken.stderr, taken.stderr
    missing = remote(bai, server, server.token, "cluster", "create", "-w", "nowhere", "-n", "c2",
                     "--nodes", "0", "--use-auto-storage", "-o", "none")  # fmt: skip
    assert missing.returncode != 0 and "nowhere" in missing.stderr, missing.stderr
    assert auto_accounts(installation) == []
    assert account_folders(installation) == folders
    assert audited(server, "storage.account.create") == []


def test_an_owner_makes_it_in_the_audit_log_and_a_contributor_then_uses_it(
    bai: Bai, installation: App, server: Server
) -> None:
    owner = tokens.create_token(installation, "boss", role=Role.OWNER)[1]
    made = auto_create(bai, server, owner, "c2")
    assert made.returncode == 0, made.stderr
    [account] = auto_accounts(installation)
    for kind, volume in (
        (VolumeKind.FILE, clusters.AUTO_STORAGE_SHARE_NAME),
        (VolumeKind.BLOB, clusters.AUTO_STORAGE_CONTAINER_NAME),
    ):
        assert volume in {
            v.name for v in accounts.backend(installation, account, kind).list_volumes()
        }
    [entry] = audited(server, "storage.account.create")
    assert (entry["token"], entry["resource"], entry["result"], entry["status"]) == (
        "boss",
        f"/openbai/storage/accounts/{account}",
        "succeeded",
        200,
    )
    # the account there is: a contributor mounts it as it mounts any account's volumes
    contributor = tokens.create_token(
        installation, "contrib", role=Role.CONTRIBUTOR, workspaces=["ws1"]
    )[1]
    used = auto_create(bai, server, contributor, "c3")
    assert used.returncode == 0, used.stderr
    assert auto_accounts(installation) == [account]
    assert cluster_names(installation) == ["c1", "c2", "c3"]
    assert len(audited(server, "storage.account.create")) == 1


def test_an_account_made_for_a_cluster_that_then_fails_is_taken_away(
    installation: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A create that passes the checks and still fails (another request took the name in
    between, say) removes the account it made, and says so in the audit log."""
    owner = tokens.create_token(installation, "boss", role=Role.OWNER)[0]
    checks = 0
    real = clusters._new_cluster_workspace

    def taken_in_between(*args: object) -> object:
        nonlocal checks
        checks += 1
        if checks == 2:
            raise ConflictError("cluster c2 already exists", code="ClusterAlreadyExists")
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(clusters, "_new_cluster_workspace", taken_in_between)
    folders = account_folders(installation)
    with pytest.raises(ConflictError):
        clusters.create_cluster(
            installation, "default", "ws1", "c2", {"properties": {}},
            use_auto_storage=True, caller=owner,
        )  # fmt: skip
    assert checks == 2
    assert auto_accounts(installation) == []
    assert account_folders(installation) == folders
    entries = audit.list_entries(installation, audit.AuditFilter(token="boss"))
    assert sorted(e.action for e in entries) == ["storage.account.create", "storage.account.delete"]

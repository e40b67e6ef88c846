"""Storage accounts and their volumes: create, list, delete, and the backend for a volume.

Account names follow Azure's rule (3-24 lowercase letters and digits) so that an embedded
account can be swapped for an Azure one without touching job files. Secret options (keys,
connection strings) are sealed before they are stored and never returned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openbai.errors import ConflictError, NotFoundError, SpecError
from openbai.installation import App
from openbai.scheduling.volumes import account_options
from openbai.spec.common import check_resource_group
from openbai.storage.base import StorageBackend, VolumeInfo, VolumeKind
from openbai.storage.names import check_volume_name
from openbai.storage.registry import ACCOUNT_KINDS, account_backends, backend_for
from openbai.store.models import StorageAccount

_ACCOUNT_NAME = re.compile(r"[a-z0-9]{3,24}")
#: option names whose values are secrets: sealed at rest, never shown
SECRET_OPTIONS = frozenset({"account_key", "connection_string", "sas_token", "password"})


@dataclass(frozen=True)
class Account:
    """An account as the layers above see it: public options only, plus how to reach it."""

    name: str
    kind: str
    resource_group: str
    created: datetime
    options: dict[str, Any]

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "resourceGroup": self.resource_group,
            "creationTime": self.created.isoformat(),
            **{k: v for k, v in self.options.items() if k not in SECRET_OPTIONS and k != "root"},
        }


def check_account_name(name: str, *, field: str = "name") -> str:
    if not _ACCOUNT_NAME.fullmatch(name):
        raise SpecError(
            f"{field}: a storage account name is 3 to 24 lowercase letters and digits, got {name!r}",
            target=field,
        )
    return name


def create_account(
    app: App,
    name: str,
    *,
    kind: str = "local",
    resource_group: str | None = None,
    options: dict[str, Any] | None = None,
) -> Account:
    check_account_name(name)
    if resource_group is not None:
        check_resource_group(resource_group, field="resourceGroup")
    if kind not in ACCOUNT_KINDS:
        raise SpecError(
            f"kind must be one of {', '.join(sorted(ACCOUNT_KINDS))}, got {kind!r}", target="kind"
        )
    options = dict(options or {})
    _check_numbers(options)
    for backend_cls in account_backends(kind):
        backend_cls.check_options(name, options)
    for backend_cls in account_backends(kind):
        options |= backend_cls.provision_account(name, app.settings.storage_root)
    public = {k: v for k, v in options.items() if k not in SECRET_OPTIONS}
    secret = {k: v for k, v in options.items() if k in SECRET_OPTIONS}
    with app.db.session() as s:
        if s.scalar(select(StorageAccount).where(StorageAccount.name == name)) is not None:
            raise ConflictError(
                f"storage account {name!r} already exists", code="StorageAccountAlreadyExists"
            )
        row = StorageAccount(
            name=name,
            kind=kind,
            resource_group=resource_group or app.settings.resource_group,
            options=public,
            sealed_secrets=app.sealer.seal(secret) if secret else None,
        )
        s.add(row)
        s.flush()
        account = _account(row)
    return account


#: the options the backends read as whole numbers, and as seconds: an account with "x" there
#: would be stored and then fail every use
_WHOLE_OPTIONS = ("max_concurrency", "retry_total", "md5_up_to", "port", "mount_port", "version")
_SECONDS_OPTIONS = ("timeout",)


def _check_numbers(options: dict[str, Any]) -> None:
    for name in (*_WHOLE_OPTIONS, *_SECONDS_OPTIONS):
        value = options.get(name)
        if value is None:
            continue
        if name in _WHOLE_OPTIONS:
            good = (isinstance(value, int) and not isinstance(value, bool) and value >= 0) or (
                isinstance(value, str) and value.isdigit()
            )
        else:
            try:
                good = not isinstance(value, bool) and 0 < float(value) < float("inf")
            except (TypeError, ValueError):
                good = False
        if not good:
            what = "a whole number of 0 or more" if name in _WHOLE_OPTIONS else "seconds, above 0"
            raise SpecError(
                f"options.{name} must be {what}, got {value!r}", target=f"options.{name}"
            )


def _account(row: StorageAccount) -> Account:
    return Account(row.name, row.kind, row.resource_group, row.created_at, dict(row.options))


def _row(session: Session, name: str) -> StorageAccount:
    row = session.scalar(select(StorageAccount).where(StorageAccount.name == name))
    if row is None:
        raise NotFoundError(
            f"storage account {name!r} does not exist", code="StorageAccountNotFound", target=name
        )
    return row


def get_account(app: App, name: str) -> Account:
    with app.db.reading() as s:
        return _account(_row(s, name))


def list_accounts(app: App) -> list[Account]:
    with app.db.reading() as s:
        return [
            _account(r) for r in s.scalars(select(StorageAccount).order_by(StorageAccount.name))
        ]


def delete_account(app: App, name: str) -> None:
    with app.db.session() as s:
        row = _row(s, name)
        kind, options = row.kind, dict(row.options)
        s.delete(row)
    for backend_cls in account_backends(kind):
        backend_cls.remove_account(name, options)


def backend(app: App, account: str, kind: VolumeKind) -> StorageBackend:
    account_kind, options = account_options(app, account)
    return backend_for(account, account_kind, kind, options)


def create_volume(
    app: App, account: str, kind: VolumeKind, name: str, *, exist_ok: bool = False
) -> VolumeInfo:
    field = "container" if kind is VolumeKind.BLOB else "share"
    check_volume_name(name, field=field)
    store = backend(app, account, kind)
    try:
        return store.create_volume(name)
    except ConflictError:
        if exist_ok:
            return VolumeInfo(name, kind)
        raise ConflictError(
            f"{field} {name!r} already exists in account {account!r}",
            code="ContainerAlreadyExists" if kind is VolumeKind.BLOB else "ShareAlreadyExists",
        ) from None


def require_volume(app: App, account: str, kind: VolumeKind, name: str, *, field: str) -> None:
    """Raise a SpecError naming ``field`` unless the account and its volume exist."""
    try:
        store = backend(app, account, kind)
    except NotFoundError:
        raise SpecError(
            f"{field}: storage account {account!r} does not exist (bai storage account create -n {account})",
            target=field,
        ) from None
    if not store.volume_exists(name):
        noun, verb = (
            ("container", "container") if kind is VolumeKind.BLOB else ("file share", "share")
        )
        raise SpecError(
            f"{field}: {noun} {name!r} does not exist in storage account {account!r}"
            f" (bai storage {verb} create --account {account} -n {name})",
            target=field,
        )

"""Sealing secret options (storage account keys, connection strings) at rest.

Secrets are encrypted with Fernet under a key kept in ``$OPENBAI_HOME/secret.key`` (mode
0600, created on first use), so that a copy of the database alone reveals no key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from openbai.errors import OpenBaiError
from openbai.files import create_once


class Sealer:
    def __init__(self, key_file: Path):
        self._key_file = key_file
        self._fernet: Fernet | None = None

    def _cipher(self) -> Fernet:
        if self._fernet is None:
            self._fernet = Fernet(_read_or_create_key(self._key_file))
        return self._fernet

    def seal(self, values: dict[str, Any]) -> str:
        return self._cipher().encrypt(json.dumps(values).encode()).decode()

    def unseal(self, token: str | None) -> dict[str, Any]:
        if not token:
            return {}
        try:
            data: dict[str, Any] = json.loads(self._cipher().decrypt(token.encode()))
        except InvalidToken as exc:
            raise OpenBaiError(
                "cannot decrypt stored secrets with the installation's key: it was not sealed"
                " with it, or the key file was replaced"
            ) from exc
        return data


def _read_or_create_key(path: Path) -> bytes:
    return create_once(path, Fernet.generate_key).strip()


# -- job and cluster secrets at rest ----------------------------------------------------------
# Job.secrets and Cluster.secrets stay plain dicts to every caller; in the database their
# JSON column holds {"$sealed": token} (no variable name has a "$"). Rows written before
# this are read as they are and sealed when next written.

SEALED_KEY = "$sealed"
#: the sealer of each database, by URL: ORM events know the connection, not the App
_SEALERS: dict[str, Sealer] = {}


def seal_rows_at_rest(url: str, sealer: Sealer) -> None:
    """Seal job and cluster secrets of the database at ``url`` with ``sealer``."""
    _SEALERS[url] = sealer
    _listen_once()


def sealed(sealer: Sealer, clear: dict[str, Any]) -> dict[str, Any]:
    """What a secrets column holds for ``clear`` (for writes that bypass the ORM's events)."""
    return {SEALED_KEY: sealer.seal(clear)}


def _sealer_of(bind: Any) -> Sealer | None:
    url = getattr(bind, "url", None)
    return _SEALERS.get(url.render_as_string(hide_password=False)) if url is not None else None


def _seal(mapper: Any, connection: Any, target: Any) -> None:
    from sqlalchemy import inspect

    sealer = _sealer_of(connection.engine)
    clear = target.secrets
    if sealer is None or not isinstance(clear, dict) or SEALED_KEY in clear:
        return
    if inspect(target).persistent and not inspect(target).attrs.secrets.history.has_changes():
        return
    target.secrets = sealed(sealer, clear)
    target.__dict__["_openbai_clear_secrets"] = clear


def _restore(mapper: Any, connection: Any, target: Any) -> None:
    from sqlalchemy.orm.attributes import set_committed_value

    clear = target.__dict__.pop("_openbai_clear_secrets", None)
    if clear is not None:
        set_committed_value(target, "secrets", clear)


def _unseal(target: Any, context: Any, *_: Any) -> None:
    from sqlalchemy.orm.attributes import set_committed_value

    stored = target.__dict__.get("secrets")
    if not isinstance(stored, dict) or SEALED_KEY not in stored:
        return
    sealer = _sealer_of(context.session.get_bind())
    if sealer is not None:
        set_committed_value(target, "secrets", sealer.unseal(stored[SEALED_KEY]))


_listening = False


def _listen_once() -> None:
    global _listening
    if _listening:
        return
    from sqlalchemy import event

    from openbai.store.models import Cluster, Job

    for model in (Job, Cluster):
        event.listen(model, "before_insert", _seal)
        event.listen(model, "before_update", _seal)
        event.listen(model, "after_insert", _restore)
        event.listen(model, "after_update", _restore)
        event.listen(model, "load", _unseal)
        event.listen(model, "refresh", _unseal)
    _listening = True

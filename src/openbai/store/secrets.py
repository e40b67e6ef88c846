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
                f"cannot decrypt stored secrets with {self._key_file}: the key file was replaced"
            ) from exc
        return data


def _read_or_create_key(path: Path) -> bytes:
    return create_once(path, Fernet.generate_key).strip()

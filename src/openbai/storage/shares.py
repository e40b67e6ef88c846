"""Share management for SMB file shares: the interface, and which implementation an account gets.

SMB moves files but cannot create, list or delete shares. On Azure Files that is the File REST
API (``azure_shares.py``); on a local Samba stand-in, registry shares made with ``net conf``
(``samba_shares.py``). Both are built without I/O, and imported only when chosen.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol


class ShareAdmin(Protocol):
    """Creates, lists and deletes shares (SMB cannot): Azure's REST API or Samba's ``net``."""

    def list_shares(self) -> list[str]: ...

    def create_share(self, name: str) -> None: ...

    def delete_share(self, name: str) -> None: ...


def share_admin_for(
    options: Mapping[str, Any], rest_endpoint: str | None, account_name: str, account_key: str
) -> ShareAdmin | None:
    """The share admin an account's options call for (built without I/O)."""
    if rest_endpoint is not None:
        from openbai.storage.azure_shares import AzureShares

        retries = int(options.get("retry_total", 4))
        return AzureShares(rest_endpoint, account_name, account_key, retry_total=retries)
    if options.get("samba_config"):
        from openbai.storage.samba_shares import SambaShares

        return SambaShares(Path(str(options["samba_config"])))
    return None

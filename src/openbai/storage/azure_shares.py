"""Share management on Azure Files: create, list and delete shares through the File REST API.

SMB 3 moves the files (``storage/smb.py``) but cannot create a share; on a real account that
is a REST call (azure-storage-file-share), authenticated with the account's shared key. The
client is built on first use, so constructing this does no I/O.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from azure.storage.fileshare import ExponentialRetry, ShareServiceClient

from openbai.storage.azure_errors import sdk_error
from openbai.storage.names import check_volume_name


@contextlib.contextmanager
def _translate(where: str) -> Iterator[None]:
    """Turn Azure SDK exceptions into openbai storage errors."""
    try:
        yield
    except Exception as e:
        error = sdk_error(e, where, service="file")
        if error is e:
            raise
        raise error from e


class AzureShares:
    """The shares of one Azure storage account, at ``endpoint`` (``https://acct.file...``)."""

    def __init__(self, endpoint: str, account_name: str, account_key: str, *, retry_total: int = 4):
        self.endpoint = endpoint
        self.account_name = account_name
        self._account_key = account_key
        self._retry_total = retry_total
        self._client: ShareServiceClient | None = None
        self._lock = threading.Lock()

    def _service(self) -> ShareServiceClient:
        with self._lock:
            if self._client is None:
                retry = ExponentialRetry(
                    initial_backoff=1, increment_base=2, retry_total=self._retry_total
                )
                credential = {"account_name": self.account_name, "account_key": self._account_key}
                self._client = ShareServiceClient(
                    self.endpoint, credential=credential, retry_policy=retry
                )
            return self._client

    def list_shares(self) -> list[str]:
        with _translate(self.account_name):
            return sorted(str(share.name) for share in self._service().list_shares())

    def create_share(self, name: str) -> None:
        check_volume_name(name)
        with _translate(name):
            self._service().create_share(name)

    def delete_share(self, name: str) -> None:
        check_volume_name(name)
        with _translate(name):
            self._service().delete_share(name, delete_snapshots=True)

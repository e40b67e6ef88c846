"""The Azure SDKs' errors reach users as openbai's storage errors, translated alike for the
blob and file services (storage/azure_errors.py; the blob side meets Azurite's errors in
test_azure_blob.py; no Azure Files service runs here, so the file side meets a refused
connection)."""

from __future__ import annotations

import pytest

from openbai.errors import BackendUnavailableError
from openbai.storage.azure_shares import AzureShares


def test_an_unreachable_file_service_is_unavailable_naming_the_share() -> None:
    shares = AzureShares("http://127.0.0.1:9", "acct", "a2V5", retry_total=0)
    with pytest.raises(BackendUnavailableError, match="^logs: file service unreachable$"):
        shares.create_share("logs")

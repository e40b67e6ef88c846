"""RemoteStorage (the CLI's storage through ``bai serve``): the storage conformance suite,
against a real server over an embedded account."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from storage.conformance import StorageConformance

from openbai.cli.remote_storage import RemoteStorage
from openbai.installation import App
from openbai.services import accounts
from openbai.settings import Settings
from openbai.storage.base import VolumeKind

from .support import Server, start_server


@pytest.fixture(scope="module")
def storage_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("remote-storage")
    app = App.open(Settings.load({"OPENBAI_HOME": str(home)}))
    accounts.create_account(app, "acct")
    app.close()
    running = start_server(home)
    yield running
    running.stop()


@pytest.fixture(params=[VolumeKind.BLOB, VolumeKind.FILE])
def backend(storage_server: Server, request: pytest.FixtureRequest) -> Iterator[RemoteStorage]:
    with storage_server.client() as http:
        yield RemoteStorage(http, "acct", request.param)


class TestRemoteStorage(StorageConformance):
    pass


def test_from_options_and_errors(storage_server: Server) -> None:
    built = RemoteStorage.from_options(
        "acct", VolumeKind.BLOB, {"server": storage_server.url, "token": storage_server.token}
    )
    assert built.list_volumes() is not None
    from openbai.errors import AuthError, NotFoundError

    anonymous = RemoteStorage(httpx.Client(base_url=storage_server.url), "acct", VolumeKind.BLOB)
    with pytest.raises(AuthError):
        anonymous.list_volumes()
    with storage_server.client() as http, pytest.raises(NotFoundError):
        RemoteStorage(http, "nosuchacct", VolumeKind.BLOB).list_volumes()

"""What a blob mount does with the errors it returns to a job: each is recorded with its file
and time, even when the store comes back and the job ignored the error."""

from __future__ import annotations

import errno
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from azurite_fixture import Azurite, AzuriteProcess, require_node

from openbai.mounts.fuse import FuseMounter
from openbai.runtime.execution_log import ExecutionLog
from openbai.runtime.layout import NodeLayout
from openbai.runtime.volumes import unmount_all
from openbai.storage.azure_blob import AzureBlobStorage
from openbai.storage.base import VolumeKind

from .conftest import FAST, blob_spec

pytestmark = [pytest.mark.fuse, pytest.mark.azurite]


@pytest.fixture
def own_azurite(tmp_path: Path) -> Iterator[tuple[AzuriteProcess, Azurite]]:
    """An Azurite of this test alone (the test stops and starts it)."""
    require_node()
    process = AzuriteProcess(tmp_path / "azurite")
    azurite = process.start()
    backend = AzureBlobStorage.from_options(
        azurite.account_name, VolumeKind.BLOB, {"connection_string": azurite.connection_string}
    )
    backend.create_volume("out")
    backend.close()
    yield process, azurite
    process.stop()


def test_errors_during_an_outage_fail_the_job_though_the_store_came_back(
    fuse: None, own_azurite: tuple[AzuriteProcess, Azurite], tmp_path: Path
) -> None:
    process, azurite = own_azurite
    spec = blob_spec(azurite, "out", retry_total=0)
    mount = FuseMounter(FAST).mount(spec, tmp_path / "m" / "out", print)
    (mount.path / "a.txt").write_text("line 1\n")
    before = time.time()
    process.stop()
    # a script that ignores failed writes, as the one of the issue did
    refused: list[int | None] = []

    def ignoring_errors(path: Path, mode: str, text: str) -> None:
        try:
            with open(path, mode) as f:
                f.write(text)
        except OSError as e:
            refused.append(e.errno)

    ignoring_errors(mount.path / "a.txt", "a", "line 2\n")
    ignoring_errors(mount.path / "b.txt", "w", "b\n")
    assert refused == [errno.EIO, errno.EIO]
    after = time.time()
    process.start()
    (mount.path / "c.txt").write_text("fine\n")

    log_file = tmp_path / "execution.log"
    log = ExecutionLog(log_file)
    errors = unmount_all(
        [mount], NodeLayout(tmp_path / "node", tmp_path / "run", "ws", "exp", "j"), log
    )
    log.close()
    # everything still pending was stored once the store was back; what the job was refused
    # is recorded all the same, with the files and when
    assert {(f.path, f.errno) for f in mount.faults} >= {("a.txt", errno.EIO), ("b.txt", errno.EIO)}
    assert all(before <= f.at <= after for f in mount.faults)
    assert [e.code for e in errors] == ["OutputUploadFailed"]
    assert "a.txt" in errors[0].message and "b.txt" in errors[0].message
    assert "c.txt" not in errors[0].message
    logged = log_file.read_text()
    assert "the job got EIO on" in logged and "of a.txt" in logged and "of b.txt" in logged

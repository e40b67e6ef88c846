"""A container's bound folders are found again in the container before any task runs in it
(runtime/bind_check.py), with real podman containers.

The runtime binds each folder by its path, resolved as root when the container starts,
following links: another job writing the same embedded volume could swap the volume's folder
for a link to any host folder just before that. These tests make the swap at that very moment
(after the runner opened the folders, before the runtime resolves them) and check that the job
is refused before it ran anything.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Bai
from podman_fixture import Podman, podman_fixture  # noqa: F401  (the fixture "podman")

from openbai.mounts.link import Anchor
from openbai.plan.job_plan import ContainerSpec
from openbai.runtime import bind_check, containers, job_container
from openbai.runtime.bind_check import BindChanged

SECRET = "another tenant's secret 7c1d"


@pytest.fixture
def volume(tmp_path: Path) -> tuple[Path, Anchor]:
    """A volume's directory with a folder ``share`` a job mounts (its anchor), and a host
    folder ``elsewhere`` holding a file no job may read."""
    top = tmp_path / "volume"
    (top / "share").mkdir(parents=True)
    (top / "share" / "mine.txt").write_text("the volume's\n")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "secret.txt").write_text(SECRET)
    return top / "share", (top, ("share",))


def swap_for_link(folder: Path, target: Path) -> None:
    """What another job writing the volume does: the folder moved away, a link in its place."""
    folder.rename(folder.with_name(folder.name + ".moved"))
    folder.symlink_to(target, target_is_directory=True)


@pytest.fixture
def started(podman: Podman, tmp_path: Path) -> Iterator[list[job_container.JobContainer]]:
    """Containers a test starts (``start``): removed at its end."""
    running: list[job_container.JobContainer] = []
    yield running
    for container in running:
        container.remove()


def start(
    podman: Podman, tmp_path: Path, running: list[job_container.JobContainer], binds: list[Path]
) -> job_container.JobContainer:
    name = f"openbai-bindcheck-{os.getpid()}-{len(running)}"
    container = job_container.start(
        "podman", ContainerSpec(podman.image), name, binds, tmp_path / f"{name}.log"
    )
    running.append(container)
    return container


@pytest.mark.podman
@pytest.mark.timeout(300)
@pytest.mark.parametrize("anchored", [True, False], ids=["volume-folder", "own-folder"])
def test_a_folder_swapped_for_a_link_as_the_container_starts_is_refused(
    anchored: bool,
    podman: Podman,
    tmp_path: Path,
    volume: tuple[Path, Anchor],
    started: list[job_container.JobContainer],
) -> None:
    """A volume's folder (held to its anchor) and one of openbai's own folders bound by path
    (the mount root, the job temp: held to what the runner resolved just before the start)."""
    folder, anchor = volume
    if not anchored:
        folder = tmp_path / "mounts"
        folder.mkdir()
    with bind_check.expect([folder], {folder: anchor} if anchored else {}) as expected:
        swap_for_link(folder, tmp_path / "elsewhere")  # after the runner opened it
        container = start(podman, tmp_path, started, [folder])
        # the race is real: podman followed the link, the container has the host folder
        pid = bind_check.container_pid("podman", container.name)
        assert (Path(f"/proc/{pid}/root") / folder.relative_to("/") / "secret.txt").exists()
        with pytest.raises(BindChanged) as refused:
            bind_check.verify("podman", container.name, expected)
    assert refused.value.path == folder
    assert "changed while the container started" in str(refused.value)


@pytest.mark.podman
@pytest.mark.timeout(300)
def test_the_folders_bound_as_they_were_opened_pass(
    podman: Podman,
    tmp_path: Path,
    volume: tuple[Path, Anchor],
    started: list[job_container.JobContainer],
) -> None:
    folder, anchor = volume
    own = tmp_path / "mounts"
    own.mkdir()
    # nested binds are bound (and checked) once, with their outermost folder
    binds = [folder, own, own / "inside", folder / "sub"]
    (own / "inside").mkdir()
    with bind_check.expect(binds, {folder: anchor}) as expected:
        assert sorted(expected.folders) == sorted([folder, own])
        container = start(podman, tmp_path, started, binds)
        bind_check.verify("podman", container.name, expected)  # no exception: it may run tasks


def test_a_link_already_on_the_way_to_a_volume_folder_is_refused_before_the_start(
    tmp_path: Path, volume: tuple[Path, Anchor]
) -> None:
    folder, anchor = volume
    swap_for_link(folder, tmp_path / "elsewhere")
    with pytest.raises(BindChanged) as refused:
        bind_check.expect([folder], {folder: anchor})
    assert refused.value.path == folder


def test_a_missing_folder_is_refused_before_the_start(tmp_path: Path) -> None:
    with pytest.raises(BindChanged, match="cannot be bound"):
        bind_check.expect([tmp_path / "nowhere"], {})


def test_a_process_in_the_hosts_own_mount_namespace_proves_nothing(
    tmp_path: Path, volume: tuple[Path, Anchor]
) -> None:
    """The host's view of a path is not the container's: the runner's own process (or a
    number that a host process took since the container ended) is refused."""
    folder, anchor = volume
    with bind_check.expect([folder], {folder: anchor}) as expected:
        with pytest.raises(BindChanged, match="not in the container's mount namespace"):
            bind_check.verify_process(os.getpid(), expected)


def test_the_containers_process_as_each_runtime_tells_it() -> None:
    assert containers.pid_argv("podman", "c") == [
        "podman",
        "inspect",
        "--type",
        "container",
        "--format",
        "{{.State.Pid}}",
        "c",
    ]
    assert bind_check.parse_pid("podman", "c", "4242\n") == 4242
    assert bind_check.parse_pid("docker", "c", "0\n") is None  # not running
    assert bind_check.parse_pid("podman", "c", "") is None
    listed = {"instances": [{"instance": "other", "pid": 1}, {"instance": "c", "pid": 77}]}
    assert containers.pid_argv("apptainer", "c")[:4] == ["apptainer", "instance", "list", "--json"]
    assert bind_check.parse_pid("apptainer", "c", json.dumps(listed)) == 77
    assert bind_check.parse_pid("apptainer", "x", json.dumps(listed)) is None
    assert bind_check.parse_pid("apptainer", "c", "not json") is None


# --- through a real job -------------------------------------------------------------------

#: podman, as the runner finds it on its PATH: on the job container's ``run``, it first does
#: what another job writing the volume would do at that moment (the swap the file names),
#: then is podman
SHIM = """#!/bin/sh
if [ "$1" = run ] && [ -f "{swap}" ]; then
    read -r folder target < "{swap}"
    rm -f "{swap}"
    mv "$folder" "$folder.moved" && ln -s "$target" "$folder"
fi
exec {podman} "$@"
"""


@pytest.fixture
def swapping_podman(bai_env: dict[str, str], tmp_path: Path) -> Path:
    """The file that makes the runner's podman swap a folder (``FOLDER TARGET``) as it starts
    the next job container (set on the installation's PATH before its dispatcher starts)."""
    real = subprocess.run(["sh", "-c", "command -v podman"], capture_output=True, text=True)
    shims = tmp_path / "shims"
    shims.mkdir()
    swap = tmp_path / "swap"
    shim = shims / "podman"
    shim.write_text(SHIM.format(swap=swap, podman=real.stdout.strip()))
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    bai_env["PATH"] = f"{shims}:{os.environ['PATH']}"
    return swap


def _job(image: str, command: str) -> dict[str, Any]:
    return {
        "nodeCount": 1,
        "containerSettings": {"imageSourceRegistry": {"image": image}},
        "customToolkitSettings": {"commandLine": command},
        "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
        "mountVolumes": {
            "azureFileShares": [
                {
                    "azureFileUrl": "https://acct.file.core.windows.net/logs",
                    "relativeMountPath": "logs",
                },
                {
                    "azureFileUrl": "https://acct.file.core.windows.net/data",
                    "relativeMountPath": "data",
                },
            ]
        },
    }


@pytest.mark.podman
@pytest.mark.timeout(600)
def test_a_job_whose_volume_folder_is_swapped_as_its_container_starts_runs_nothing(
    swapping_podman: Path, workspace: Bai, podman: Podman, tmp_path: Path
) -> None:
    bai = workspace
    bai("storage", "account", "create", "-n", "acct")
    for share in ("logs", "data"):
        bai("storage", "share", "create", "--account", "acct", "-n", share)
    data = bai.home / "storage" / "acct" / "file" / "data"
    assert data.is_dir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.txt").write_text(SECRET)
    bai(
        "cluster", "create", "-w", "ws", "-n", "pc", "--nodes", "1", "--container-runtime", "podman"
    )

    def create(name: str, command: str) -> dict[str, Any]:
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"properties": _job(podman.image, command)}))
        bai("job", "create", "-w", "ws", "-e", "exp", "-c", "pc", "-n", name, "-f", str(path))
        return bai.wait(name, timeout=300)

    read = "cat $AZ_BATCHAI_JOB_MOUNT_ROOT/data/secret.txt; echo ran > $AZ_BATCHAI_JOB_MOUNT_ROOT/logs/ran"
    swapping_podman.write_text(f"{data} {elsewhere}\n")
    job = create("swapped", read)
    assert not swapping_podman.exists()  # the shim swapped the folder as podman started
    assert data.is_symlink()
    assert job["executionState"] == "failed", job
    error = job["executionInfo"]["errors"][0]
    assert error["code"] == "FailedStartingContainer", error
    assert str(data) in error["message"]
    assert "changed while the container started" in error["message"]
    logs = bai.home / "storage" / "acct" / "file" / "logs"
    assert not (logs / "ran").exists()  # no task ran
    assert not any(SECRET in p.read_text() for p in logs.rglob("std*.txt"))
    stdouterr = logs / job["jobOutputDirectoryPathSegment"] / "stdouterr"
    started = re.search(
        r"starting container (\S+) from image", (stdouterr / "execution.log").read_text()
    )
    assert started is not None
    assert started.group(1) not in podman.containers()  # removed

    # the volume as it was: a job runs in its container as ever
    data.unlink()
    data.with_name("data.moved").rename(data)
    (data / "mine.txt").write_text("the volume's\n")
    job = create("plain", "cat $AZ_BATCHAI_JOB_MOUNT_ROOT/data/mine.txt")
    assert job["executionState"] == "succeeded", job["executionInfo"]
    out = logs / job["jobOutputDirectoryPathSegment"] / "stdouterr" / "stdout.txt"
    assert out.read_text() == "the volume's\n"

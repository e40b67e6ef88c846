"""What of a container job reaches the programs the node runs as root for it, outside the
container: the host process that waits for each task's exit code, the runtime's client, and
what podman hands the container of its own environment."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Bai
from podman_fixture import Podman, podman_fixture  # noqa: F401  (the fixture "podman")

from openbai.plan.job_plan import ContainerSpec
from openbai.runtime import containers, job_container, processes

from .test_containers_podman import _cluster, _create, _job, _stdouterr, podman_test


@pytest.fixture
def volumes(workspace: Bai) -> Bai:
    """``workspace`` plus the volumes of ``_job``: share ``logs``, container ``data``."""
    bai = workspace
    bai("storage", "account", "create", "-n", "acct")
    bai("storage", "share", "create", "--account", "acct", "-n", "logs")
    bai("storage", "container", "create", "--account", "acct", "-n", "data")
    return bai


@pytest.fixture
def root_only() -> Iterator[Path]:
    """A host folder only root can write, bound into no container: only a program the node
    runs as root outside the container can leave a file there."""
    place = Path(tempfile.mkdtemp(prefix="openbai-rootonly-", dir="/var/tmp"))
    place.chmod(0o700)
    yield place
    shutil.rmtree(place, ignore_errors=True)


@podman_test
def test_a_container_jobs_path_names_no_program_the_node_runs_as_root(
    volumes: Bai, podman: Podman, tmp_path: Path, root_only: Path
) -> None:
    """The job's job preparation puts a ``head`` in its temp folder (bound at the host's path)
    and its PATH names that folder first: the host process that reads each task's exit code
    must not run it (it did, as root, with every capability, in the host's namespaces)."""
    bai = volumes
    _cluster(bai, "pc", 1, "--container-runtime", "podman")
    fake = f'#!/bin/sh\nid -u > {root_only}/ran\nexec /usr/bin/head "$@"\n'
    prepare = (
        'd="$AZ_BATCHAI_JOB_TEMP/evil"; mkdir -p "$d"; '
        f"printf '%s' '{fake}' > \"$d/head\"; chmod 755 \"$d/head\""
    )
    path = "$AZ_BATCHAI_JOB_TEMP/evil:/usr/local/bin:/usr/bin:/bin"
    props = _job(
        podman.image,
        'echo "main on $(command -v head)"; exit 3',
        jobPreparation={"commandLine": prepare},
        environmentVariables=[{"name": "PATH", "value": path}],
    )
    _create(bai, tmp_path, "pathy", props, "pc")
    job = bai.wait("pathy", timeout=300)
    # the task ran with its PATH (its own head first, in the container) and its exit code
    # came back through the waiter as ever
    assert job["executionInfo"]["exitCode"] == 3, bai.why(job)
    stdout = (_stdouterr(bai, job) / "stdout.txt").read_text()
    assert stdout.startswith("main on ") and stdout.strip().endswith("/evil/head"), stdout
    assert not (root_only / "ran").exists()  # nothing of the job ran on the host


PROXY_SECRET = "proxy-secret-41f"


@pytest.fixture
def proxied(bai_env: dict[str, str]) -> None:
    """Proxy settings with credentials in the installation's environment (set before its
    dispatcher starts, which its runners inherit)."""
    for name in ("https_proxy", "HTTP_PROXY"):
        bai_env[name] = f"http://alice:{PROXY_SECRET}@proxy.invalid:3128"


@podman_test
def test_the_runners_proxy_settings_do_not_reach_a_container_job(
    proxied: None, volumes: Bai, podman: Podman, tmp_path: Path
) -> None:
    """podman hands its client's proxy variables to the container by default: the runner's
    (the installation's, credentials and all), of which a job keeps nothing."""
    bai = volumes
    _cluster(bai, "pc", 1, "--container-runtime", "podman")
    _create(bai, tmp_path, "proxied", _job(podman.image, "env; cat /proc/1/environ"), "pc")
    job = bai.wait("proxied", timeout=300)
    assert job["executionState"] == "succeeded", bai.why(job)
    seen = (_stdouterr(bai, job) / "stdout.txt").read_text()
    assert "AZ_BATCHAI_JOB_TEMP" in seen  # the task's environment was printed
    assert PROXY_SECRET not in seen


def test_a_task_program_is_found_through_the_runners_path_not_the_jobs(tmp_path: Path) -> None:
    """``Popen`` looks a bare program name up through the PATH of the environment it is
    given: the task's, which the job sets, for a program that runs as root."""
    evil = tmp_path / "evil"
    evil.mkdir()
    marker = tmp_path / "ran"
    (evil / "true").write_text(f"#!/bin/sh\ntouch {marker}\n")
    (evil / "true").chmod(0o755)
    started = processes.start(
        ["true"],
        env={"PATH": str(evil)},
        cwd=tmp_path,
        stdout=tmp_path / "out",
        stderr=tmp_path / "err",
    )
    assert started.wait(timeout=30) == 0
    assert not marker.exists()
    with pytest.raises(FileNotFoundError, match="not on the node's PATH"):
        processes.program("no-such-program-3b1")


def test_a_container_tasks_host_process_gets_nothing_of_the_jobs_environment(
    tmp_path: Path,
) -> None:
    """The process that waits for a task the keeper started gets a fixed environment; the
    client that starts one by ``exec`` (apptainer) gets the task's, less its own settings."""
    keeper = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        container = job_container.JobContainer("podman", "c", "i", keeper, control=tmp_path)
        held = {"PATH": "/job/bin", "SECRET": "s-1", "APPTAINER_BIND": "/:/host"}
        argv, env = container.task_argv(
            tmp_path, {"SECRET": "s-1"}, "true", tmp_path / "o", tmp_path / "e", held=held
        )
        assert argv[0] == "/bin/sh" and "/job/bin" not in env["PATH"]
        assert not set(held) - {"PATH"} & set(env) and "s-1" not in env.values()
    finally:
        assert keeper.stdin is not None
        keeper.stdin.close()
        keeper.wait(timeout=30)
    execs = job_container.JobContainer("apptainer", "c", "i", None)
    _, env = execs.task_argv(tmp_path, {}, "true", tmp_path / "o", tmp_path / "e", held=held)
    assert env == {"PATH": "/job/bin", "SECRET": "s-1"}


@pytest.mark.parametrize("folder", ["/var/tmp/share/x,/:/h,/var/tmp/share", "/var/tmp/a:b"])
def test_apptainer_binds_no_folder_whose_name_it_would_split(folder: str) -> None:
    """apptainer's ``--bind`` is a list split at commas and colons, with no escape: a share's
    folder named ``x,/:/h,…`` bound the host's ``/`` at ``/h``."""
    spec = ContainerSpec("localhost/some/image:1")
    with pytest.raises(ValueError, match="apptainer cannot bind"):
        containers.run_argv(containers.APPTAINER, spec, "c", [Path(folder)])
    argv = containers.run_argv(containers.APPTAINER, spec, "c", [Path("/var/tmp/plain share")])
    assert "/var/tmp/plain share:/var/tmp/plain share" in argv

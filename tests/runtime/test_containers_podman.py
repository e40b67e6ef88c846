"""Jobs with ``containerSettings`` run in their image with podman, for real.

The image is the local test image of ``scripts/services/podman.sh image`` (Debian with bash and
python3, marked by ``/etc/openbai-test-image``): no registry is reachable here. A job proves it
ran inside by what only the container has (``/run/.containerenv``, the image's marker, what
job preparation left in the container's own file system).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest
from conftest import Bai
from job_files import ALLREDUCE, upload_batch
from podman_fixture import (  # noqa: F401  (the fixtures "podman" and "registry")
    Podman,
    Registry,
    podman_fixture,
    registry_fixture,
)
from polling import wait_until

SEG = "jobOutputDirectoryPathSegment"
F = TypeVar("F", bound=Callable[..., None])


def podman_test(test: F) -> F:
    """Marked ``podman``; the first such test may install podman and build the image (CI)."""
    return pytest.mark.timeout(600)(pytest.mark.podman(test))  # type: ignore[no-any-return]


VOLUMES = {
    "azureFileShares": [
        {"azureFileUrl": "https://acct.file.core.windows.net/logs", "relativeMountPath": "logs"}
    ],
    "azureBlobFileSystems": [
        {"accountName": "acct", "containerName": "data", "relativeMountPath": "data"}
    ],
}

#: run by the job in the container: checks what it sees, prints one JSON line
PROBE = """
import json, os, pathlib, sys
env = os.environ
out = env["AZ_BATCHAI_OUTPUT_OUT"]
pathlib.Path(out, "result.txt").write_text("written in the container")
print(json.dumps({
    "containerenv": os.path.exists("/run/.containerenv"),
    "image": pathlib.Path("/etc/openbai-test-image").read_text().strip(),
    "prepared": pathlib.Path("/tmp/prepared").read_text().strip(),
    "bashrc": env.get("FROM_BASHRC"),
    "secret": env.get("MY_SECRET"),
    "user_var": env.get("MY_VAR"),
    "input": sorted(os.listdir(env["AZ_BATCHAI_INPUT_DATA"])),
    "az": sorted(k for k in env if k.startswith("AZ_BATCHAI_")),
    "cwd": os.getcwd(),
    "shm": os.statvfs("/dev/shm").f_blocks * os.statvfs("/dev/shm").f_frsize,
    "host_path": env.get("PATH"),
    "task_index": env.get("AZ_BATCHAI_TASK_INDEX"),
}))
print("to stderr", file=sys.stderr)
"""


@pytest.fixture
def storage(workspace: Bai, tmp_path: Path) -> Bai:
    """``workspace`` plus account ``acct``: share ``logs``, container ``data`` with a file."""
    bai = workspace
    bai("storage", "account", "create", "-n", "acct")
    bai("storage", "share", "create", "--account", "acct", "-n", "logs")
    bai("storage", "container", "create", "--account", "acct", "-n", "data")
    src = tmp_path / "data-src"
    (src / "in").mkdir(parents=True)
    (src / "in" / "sample.txt").write_text("x")
    (src / "probe.py").write_text(PROBE)
    upload_batch(bai, src)
    return bai


#: job preparation that writes outside the job tree, in the container's own /tmp (its root's
#: to write; a host task's /tmp is its own too): the job finds it in the same container
PREPARE = "test -f /run/.containerenv && echo ok > /tmp/prepared"


@pytest.fixture
def runtime_from_env(bai_env: dict[str, str]) -> None:
    """OPENBAI_CONTAINER_RUNTIME=podman for the installation (and its dispatcher)."""
    bai_env["OPENBAI_CONTAINER_RUNTIME"] = "podman"


def _job(image: str, command: str, **extra: Any) -> dict[str, Any]:
    return {
        "nodeCount": 1,
        "containerSettings": {"imageSourceRegistry": {"image": image}},
        "customToolkitSettings": {"commandLine": command},
        "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
        "mountVolumes": VOLUMES,
        **extra,
    }


def _create(bai: Bai, tmp_path: Path, name: str, props: dict[str, Any], cluster: str) -> None:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"properties": props}))
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", cluster, "-n", name, "-f", str(path))


def _stdouterr(bai: Bai, job: dict[str, Any]) -> Path:
    segment: str = job[SEG]
    return bai.home / "storage" / "acct" / "file" / "logs" / segment / "stdouterr"


def _container_name(execution_log: str) -> str:
    found = re.search(r"starting container (\S+) from image", execution_log)
    assert found, execution_log
    return found.group(1)


def _cluster(bai: Bai, name: str, nodes: int = 1, *extra: str) -> None:
    bai("cluster", "create", "-w", "ws", "-n", name, "--nodes", str(nodes), *extra)


def _running_in_a_container(
    bai: Bai, podman: Podman, tmp_path: Path, job: str, command: str
) -> str:
    """Job ``job`` running ``command`` (one process) in the test image on a new podman cluster
    ``pc``, once that process runs: the name of the job's container."""
    _cluster(bai, "pc", 1, "--container-runtime", "podman")
    _create(bai, tmp_path, job, _job(podman.image, command), "pc")
    wait_until(lambda: _processes(command), f"process {command!r} of job {job}", timeout=60)
    shown = bai.json("job", "show", "-w", "ws", "-e", "exp", "-n", job)
    return _container_name((_stdouterr(bai, shown) / "execution.log").read_text())


@podman_test
def test_job_preparation_and_job_run_in_the_same_container_with_volumes_and_variables(
    storage: Bai, podman: Podman, tmp_path: Path
) -> None:
    bai = storage
    _cluster(bai, "pc", 1, "--container-runtime", "podman")
    secret = "s3cr3t-in-container-9f1e"
    props = _job(
        podman.image,
        "python $AZ_BATCHAI_JOB_MOUNT_ROOT/data/probe.py; sleep 1",
        jobPreparation={"commandLine": f"{PREPARE} && echo 'export FROM_BASHRC=yes' >> ~/.bashrc"},
        inputDirectories=[{"id": "DATA", "path": "$AZ_BATCHAI_JOB_MOUNT_ROOT/data/in"}],
        outputDirectories=[{"id": "OUT", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs"}],
        environmentVariables=[{"name": "MY_VAR", "value": "$AZ_BATCHAI_JOB_TEMP/mine"}],
        secrets=[{"name": "MY_SECRET", "value": secret}],
        containerSettings={
            "imageSourceRegistry": {"image": podman.image},
            "shmSize": "96m",
        },
    )
    _create(bai, tmp_path, "inside", props, "pc")
    seen_on_command_line = _watch_command_lines(bai, "inside", secret)
    job = bai.wait("inside")
    assert job["executionState"] == "succeeded", job
    assert not seen_on_command_line, seen_on_command_line

    out = _stdouterr(bai, job)
    probe = json.loads((out / "stdout.txt").read_text())
    assert probe["containerenv"] is True
    assert probe["image"] == podman.image
    assert probe["prepared"] == "ok"  # job preparation's file, in the container's own /tmp
    assert probe["bashrc"] == "yes"  # and its ~/.bashrc edit
    assert probe["secret"] == secret
    assert probe["input"] == ["sample.txt"]
    assert probe["shm"] == 96 * 1024 * 1024
    assert probe["task_index"] is None
    job_temp = probe["user_var"].removesuffix("/mine")
    assert probe["cwd"] == job_temp
    assert {
        "AZ_BATCHAI_JOB_MOUNT_ROOT",
        "AZ_BATCHAI_JOB_TEMP",
        "AZ_BATCHAI_MOUNT_ROOT",
        "AZ_BATCHAI_INPUT_DATA",
        "AZ_BATCHAI_OUTPUT_OUT",
        "AZ_BATCHAI_STDOUTERR_DIR",
        "AZ_BATCHAI_SHARED_JOB_TEMP",
        "AZ_BATCHAI_MPI_HOST_FILE",
    } <= set(probe["az"])
    assert ".venv" not in probe["host_path"]  # the image's PATH, not the host's
    assert (out / "stderr.txt").read_text() == "to stderr\n"
    outputs = out.parent / "outputs"
    assert (outputs / "result.txt").read_text() == "written in the container"

    log = (out / "execution.log").read_text()
    assert f"image {podman.image}" in log and "podman" in log
    assert "job preparation and the job run in container" in log
    assert secret not in log
    name = _container_name(log)
    assert name not in podman.containers()  # removed when the job ended


@podman_test
def test_a_volume_mounted_read_only_is_read_only_in_the_container(
    storage: Bai, podman: Podman, tmp_path: Path
) -> None:
    bai = storage
    _cluster(bai, "pc", 1, "--container-runtime", "podman")
    root = "$AZ_BATCHAI_JOB_MOUNT_ROOT"
    # a job that mounted it read-write before made its folders the job user's
    _create(bai, tmp_path, "rw", _job(podman.image, f"touch {root}/data/in/mine"), "pc")
    assert bai.wait("rw")["executionState"] == "succeeded"
    data = {"accountName": "acct", "containerName": "data", "relativeMountPath": "data"}
    volumes = {**VOLUMES, "azureBlobFileSystems": [{**data, "mountOptions": "ro"}]}
    command = (
        f"cat {root}/data/in/sample.txt; echo; echo written > {root}/data/in/sample.txt;"
        f" echo changed=$?; touch {root}/data/new; echo made=$?; touch {root}/logs/ok; echo logs=$?"
    )
    _create(bai, tmp_path, "ro", _job(podman.image, command, mountVolumes=volumes), "pc")
    job = bai.wait("ro")
    assert job["executionState"] == "succeeded", job
    lines = (_stdouterr(bai, job) / "stdout.txt").read_text().split()
    assert lines[0] == "x"  # read as it is
    assert lines[1] != "changed=0" and lines[2] != "made=0", lines
    assert lines[3] == "logs=0"  # the other volume stays writable
    stored = bai.home / "storage" / "acct" / "blob" / "data"
    assert (stored / "in" / "sample.txt").read_text() == "x"
    assert not (stored / "new").exists()


@podman_test
def test_a_volume_mounted_twice_read_write_and_read_only_stays_writable_where_read_write(
    storage: Bai, podman: Podman, tmp_path: Path
) -> None:
    bai = storage
    _cluster(bai, "pc", 1, "--container-runtime", "podman")
    data = {"accountName": "acct", "containerName": "data"}
    volumes = {
        "azureBlobFileSystems": [
            {**data, "relativeMountPath": "data"},
            {**data, "relativeMountPath": "seen", "mountOptions": "ro"},
        ]
    }
    root = "$AZ_BATCHAI_JOB_MOUNT_ROOT"
    command = f"echo written > {root}/data/mine && cat {root}/seen/mine"
    props = _job(podman.image, command, mountVolumes=volumes,
                 stdOutErrPathPrefix=f"{root}/data")  # fmt: skip
    _create(bai, tmp_path, "twice", props, "pc")
    job = bai.wait("twice")
    # its stdout, on the container it mounts read-write too, is there
    out = bai.home / "storage" / "acct" / "blob" / "data" / job[SEG] / "stdouterr"
    assert (out / "stdout.txt").read_text() == "written\n"
    assert job["executionState"] == "succeeded", job


@podman_test
def test_runtime_from_the_environment_and_one_container_per_node(
    runtime_from_env: None, storage: Bai, podman: Podman, tmp_path: Path
) -> None:
    bai = storage
    props = {
        **_job(podman.image, ""),
        "nodeCount": 2,
        "customToolkitSettings": None,
        "pyTorchSettings": {"pythonScriptFilePath": "$AZ_BATCHAI_JOB_MOUNT_ROOT/data/probe.py"},
        "jobPreparation": {"commandLine": PREPARE},
        "outputDirectories": [{"id": "OUT", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs"}],
        "inputDirectories": [{"id": "DATA", "path": "$AZ_BATCHAI_JOB_MOUNT_ROOT/data/in"}],
    }
    del props["customToolkitSettings"]
    _create(bai, tmp_path, "pernode", props, "c1")
    job = bai.wait("pernode")
    assert job["executionState"] == "succeeded", job
    out = _stdouterr(bai, job)
    ranks = [json.loads((out / f"stdout-{k}.txt").read_text()) for k in (0, 1)]
    assert [r["task_index"] for r in ranks] == ["0", "1"]
    assert all(r["containerenv"] and r["prepared"] == "ok" for r in ranks)
    logs = [p.read_text() for p in sorted(out.glob("execution-*.log"))]
    names = {_container_name(text) for text in logs}
    assert len(names) == 2  # each node its own container
    assert not names & set(podman.containers())


@podman_test
def test_a_real_mpi_program_of_two_local_nodes_runs_in_the_first_nodes_container(
    storage: Bai, podman: Podman, tmp_path: Path
) -> None:
    """On a local cluster mpirun (the image's) starts every rank in the first node's
    container, which has the limits of both nodes: the four ranks wire up and allreduce."""
    bai = storage
    _cluster(bai, "pc", 2, "--container-runtime", "podman", "--cpus-per-node", "0.5",
             "--memory-per-node", "300M", "--processes-per-node", "100")  # fmt: skip
    props = {
        **_job(podman.image, ""),
        "nodeCount": 2,
        "customMpiSettings": {"commandLine": ALLREDUCE, "processCount": 4},
    }
    del props["customToolkitSettings"]
    _create(bai, tmp_path, "allreduce", props, "pc")
    job = bai.wait("allreduce", timeout=120)
    assert job["executionState"] == "succeeded", bai.why(job)
    out = _stdouterr(bai, job)
    lines = sorted((out / "stdout.txt").read_text().splitlines())
    assert lines == [f"allreduce {rank} 10" for rank in range(4)]
    first = (out / "execution-pc-0.log").read_text()
    assert "limits 1 CPUs, 600 MiB memory, 200 processes; host paths bound" in first


@podman_test
def test_terminate_kills_the_processes_in_the_container_and_removes_it(
    storage: Bai, podman: Podman, tmp_path: Path
) -> None:
    bai = storage
    _cluster(bai, "pc", 1, "--container-runtime", "podman")
    command = "(sleep 4243 &) ; echo started; sleep 4242"
    _create(bai, tmp_path, "long", _job(podman.image, command), "pc")
    deadline = time.monotonic() + 60
    while not _processes("sleep 4242") or not _processes("sleep 4243"):
        assert time.monotonic() < deadline, "the job's processes never started"
        time.sleep(0.1)
    bai("job", "terminate", "-w", "ws", "-e", "exp", "-n", "long", "-y")
    job = bai.json("job", "show", "-w", "ws", "-e", "exp", "-n", "long")
    assert job["executionState"] == "failed"
    assert job["executionInfo"]["errors"][0]["code"] == "JobTerminated"
    assert not _processes("sleep 4242") and not _processes("sleep 4243")
    out = _stdouterr(bai, job)
    assert (out / "stdout.txt").read_text() == "started\n"
    assert _container_name((out / "execution.log").read_text()) not in podman.containers()


@podman_test
def test_a_lost_runner_takes_its_container_and_processes_with_it(
    storage: Bai, podman: Podman, tmp_path: Path
) -> None:
    bai = storage
    name = _running_in_a_container(bai, podman, tmp_path, "orphan", "sleep 4244")
    (client,) = [p for p in _processes_with(name) if p.info["cmdline"][:2] == ["podman", "run"]]
    runner = client.parent()
    assert runner is not None
    runner.kill()
    job = bai.wait("orphan")
    assert job["executionInfo"]["errors"][0]["code"] == "NodeLost"
    deadline = time.monotonic() + 30
    while _processes("sleep 4244") or name in podman.containers():
        assert time.monotonic() < deadline, "the lost job's container still runs"
        time.sleep(0.1)


#: run by a task the container's keeper started: its variables and signal dispositions
SIGNALS = """
import json, os, signal
ignored = int([l for l in open("/proc/self/status") if l.startswith("SigIgn:")][0].split()[1], 16)
print(json.dumps({
    "value": os.environ["TRICKY"],
    "ignored": [s.name for s in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM) if ignored >> (s - 1) & 1],
}))
"""


@podman_test
def test_a_task_gets_its_variables_whole_and_default_signals_without_an_exec(
    storage: Bai, podman: Podman, tmp_path: Path
) -> None:
    """The keeper starts the task: a value with quotes, a newline and substitutions arrives
    as it was, on no command line of the host; SIGINT/SIGQUIT are not ignored (as under ``exec``),
    and no ``podman exec`` ran."""
    bai = storage
    _cluster(bai, "pc", 1, "--container-runtime", "podman")
    script = tmp_path / "signals.py"
    script.write_text(SIGNALS)
    tricky = 'it\'s "q" `id` \'"; exit 1\nline two\\n'  # ($NAME is expanded on the host)
    command = "python3 $AZ_BATCHAI_JOB_MOUNT_ROOT/logs/signals.py"
    shutil.copy(script, bai.home / "storage" / "acct" / "file" / "logs" / "signals.py")
    env = [{"name": "TRICKY", "value": tricky}]
    _create(bai, tmp_path, "vars", _job(podman.image, command, environmentVariables=env), "pc")
    job = bai.wait("vars")
    out = _stdouterr(bai, job)
    assert job["executionState"] == "succeeded", (out / "stderr.txt").read_text()
    seen = json.loads((out / "stdout.txt").read_text())
    assert seen == {"value": tricky, "ignored": []}
    name = _container_name((out / "execution.log").read_text())
    events = subprocess.run(
        ["podman", "events", "--stream=false", "--since", "10m", "--filter", f"container={name}"]
        + ["--format", "{{.Status}}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert "start" in events and "exec" not in events, events


@podman_test
def test_a_container_that_ends_under_its_task_ends_the_job(
    storage: Bai, podman: Podman, tmp_path: Path
) -> None:
    """The task's host process ends with the container (exit 137), not at the wall clock."""
    bai = storage
    name = _running_in_a_container(bai, podman, tmp_path, "killed", "sleep 4246")
    subprocess.run(["podman", "kill", name], check=True, capture_output=True)
    job = bai.wait("killed")
    assert job["executionState"] == "failed"
    assert job["executionInfo"]["exitCode"] == 137
    assert name not in podman.containers()


@podman_test
def test_a_failing_job_still_removes_its_container(
    storage: Bai, podman: Podman, tmp_path: Path
) -> None:
    bai = storage
    _cluster(bai, "pc", 1, "--container-runtime", "podman")
    _create(bai, tmp_path, "bad", _job(podman.image, "echo boom >&2; exit 3"), "pc")
    job = bai.wait("bad")
    assert job["executionInfo"]["exitCode"] == 3
    out = _stdouterr(bai, job)
    assert (out / "stderr.txt").read_text() == "boom\n"
    assert _container_name((out / "execution.log").read_text()) not in podman.containers()

    _create(
        bai,
        tmp_path,
        "badprep",
        _job(podman.image, "echo never", jobPreparation={"commandLine": "exit 9"}),
        "pc",
    )
    job = bai.wait("badprep")
    assert job["executionInfo"]["errors"][0]["code"] == "JobPreparationFailed"
    log = (_stdouterr(bai, job) / "execution.log").read_text()
    assert _container_name(log) not in podman.containers()


@podman_test
def test_an_image_that_does_not_exist_fails_with_failed_starting_container(
    storage: Bai, podman: Podman, tmp_path: Path
) -> None:
    bai = storage
    _cluster(bai, "pc", 1, "--container-runtime", "podman")
    missing = "localhost/openbai/no-such-image:404"
    _create(bai, tmp_path, "noimage", _job(missing, "echo never"), "pc")
    job = bai.wait("noimage")
    assert job["executionState"] == "failed"
    error = job["executionInfo"]["errors"][0]
    assert error["code"] == "FailedStartingContainer"
    assert missing in error["message"] and "could not be pulled" in error["message"]
    assert {"name": "imageName", "value": missing} in error["details"]
    assert not (_stdouterr(bai, job) / "stdout.txt").exists()


@pytest.fixture
def private_registry(bai_env: dict[str, str], registry: Registry) -> Registry:
    """The registry, known to the installation's podman (set before its dispatcher starts)."""
    bai_env["CONTAINERS_REGISTRIES_CONF"] = str(registry.registries_conf)
    return registry


@podman_test
def test_a_private_image_is_pulled_with_credentials_that_reach_no_command_line(
    private_registry: Registry, storage: Bai, podman: Podman, tmp_path: Path
) -> None:
    bai, reg = storage, private_registry
    _cluster(bai, "pc", 1, "--container-runtime", "podman")

    def private_job(name: str, password: str) -> dict[str, Any]:
        props = _job(reg.image, "cat /etc/openbai-test-image")
        props["containerSettings"] = {
            "imageSourceRegistry": {
                "serverUrl": reg.server,
                "image": reg.image,
                "credentials": {"username": reg.username, "password": password},
            }
        }
        _create(bai, tmp_path, name, props, "pc")
        seen = _watch_command_lines(bai, name, password)
        assert not seen, seen
        return bai.wait(name)

    wrong = private_job("wrong", "not-the-password-5d2")
    error = wrong["executionInfo"]["errors"][0]
    assert error["code"] == "FailedStartingContainer"
    assert f"could not log in to registry {reg.server} as {reg.username}" in error["message"]
    assert "not-the-password" not in json.dumps(wrong)

    job = private_job("private", reg.password)
    assert job["executionState"] == "succeeded", job
    out = _stdouterr(bai, job)
    assert (out / "stdout.txt").read_text() == f"{podman.image}\n"  # the pushed test image
    log = (out / "execution.log").read_text()
    assert f"pulled image {reg.server}/{reg.image}" in log
    assert reg.password not in log + json.dumps(job)
    assert not list((bai.home / "runs").glob("*/registry-auth-*"))  # the login file is gone


@podman_test
def test_an_image_pulled_with_a_login_runs_for_no_job_that_cannot_pull_it(
    private_registry: Registry, storage: Bai, podman: Podman, tmp_path: Path
) -> None:
    """The machine's image store is every job's: a job of another cluster (another node
    root, as another workspace's) without credentials must pull the private image, and is
    refused; one with wrong credentials is refused at its login, though the image is here."""
    bai, reg = storage, private_registry
    _cluster(bai, "pc", 1, "--container-runtime", "podman")
    _cluster(bai, "other", 1, "--container-runtime", "podman")
    image = f"{reg.server}/{reg.image}"

    def private_job(name: str, cluster: str, password: str | None) -> dict[str, Any]:
        props = _job(reg.image, "cat /etc/openbai-test-image")
        registry: dict[str, Any] = {"serverUrl": reg.server, "image": reg.image}
        if password is not None:
            registry["credentials"] = {"username": reg.username, "password": password}
        props["containerSettings"] = {"imageSourceRegistry": registry}
        _create(bai, tmp_path, name, props, cluster)
        return bai.wait(name)

    job = private_job("right", "pc", reg.password)
    assert job["executionState"] == "succeeded", job
    assert subprocess.run(["podman", "image", "exists", image]).returncode == 0

    anonymous = private_job("anonymous", "other", None)
    assert anonymous["executionState"] == "failed", "ran the private image without a login"
    error = anonymous["executionInfo"]["errors"][0]
    assert error["code"] == "FailedStartingContainer", anonymous
    assert f"image {image} could not be pulled" in error["message"]
    assert not (_stdouterr(bai, anonymous) / "stdout.txt").exists()  # nothing ran

    wrong = private_job("wrong", "other", "not-the-password-8e4")
    assert wrong["executionState"] == "failed", "ran the private image with a wrong password"
    error = wrong["executionInfo"]["errors"][0]
    assert error["code"] == "FailedStartingContainer", wrong
    assert f"could not log in to registry {reg.server} as {reg.username}" in error["message"]
    assert not (_stdouterr(bai, wrong) / "stdout.txt").exists()
    assert not list((bai.home / "runs").glob("*/registry-auth-*"))  # the login files are gone


def test_a_cluster_that_requires_containers_refuses_jobs_it_cannot_run_in_one(
    workspace: Bai, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bai = workspace
    cluster = tmp_path / "cluster.json"
    cluster.write_text(
        json.dumps(
            {
                "properties": {
                    "scaleSettings": {"manual": {"targetNodeCount": 1}},
                    "openbai": {"requireContainers": True, "containerRuntime": "apptainer"},
                }
            }
        )
    )
    # a runtime that is not installed is refused at once, naming the field
    refused = bai("cluster", "create", "-w", "ws", "-n", "strict", "-f", str(cluster), expect=2)
    assert "properties.openbai.containerRuntime: container runtime apptainer is not installed" in (
        refused.stderr
    )
    cluster.write_text(
        json.dumps(
            {
                "properties": {
                    "scaleSettings": {"manual": {"targetNodeCount": 1}},
                    "openbai": {"requireContainers": True},
                }
            }
        )
    )
    bai("cluster", "create", "-w", "ws", "-n", "strict", "-f", str(cluster))
    plain = {
        "nodeCount": 1,
        "customToolkitSettings": {"commandLine": "echo hi"},
        "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_TEMP",
    }
    in_image = {**plain, "containerSettings": {"imageSourceRegistry": {"image": "ubuntu"}}}
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no runtime on this "node"
    for name, props, expected in [
        ("noimage", plain, "properties.containerSettings"),
        ("noruntime", in_image, "no container runtime (podman, docker, apptainer) is installed"),
    ]:
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"properties": props}))
        result = bai(
            "job",
            "create",
            "-w",
            "ws",
            "-e",
            "exp",
            "-c",
            "strict",
            "-n",
            name,
            "-f",
            str(path),
            expect=None,
        )
        assert result.exit_code != 0
        assert expected in result.stderr, result.stderr
    assert bai.json("job", "list", "-w", "ws", "-e", "exp") == []


def test_a_required_runtime_that_is_not_installed_refuses_the_job(
    workspace: Bai, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bai = workspace
    bai(
        "cluster",
        "create",
        "-w",
        "ws",
        "-n",
        "strict",
        "--nodes",
        "1",
        "--require-containers",
        "--container-runtime",
        "podman",
    )
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no podman on this "node"
    path = tmp_path / "job.json"
    props = {
        "nodeCount": 1,
        "containerSettings": {"imageSourceRegistry": {"image": "ubuntu"}},
        "customToolkitSettings": {"commandLine": "echo hi"},
        "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_TEMP",
    }
    path.write_text(json.dumps({"properties": props}))
    result = bai(
        "job",
        "create",
        "-w",
        "ws",
        "-e",
        "exp",
        "-c",
        "strict",
        "-n",
        "j",
        "-f",
        str(path),
        expect=None,
    )
    assert result.exit_code != 0
    assert "no container runtime (podman) is installed for cluster strict" in result.stderr
    assert result.exit_code == 4  # ContainerRuntimeUnavailable: a conflict, nothing stored
    assert bai.json("job", "list", "-w", "ws", "-e", "exp") == []


def test_an_image_job_without_any_runtime_is_refused_unless_the_cluster_allows_host_runs(
    storage: Bai, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bai = storage
    bai("cluster", "create", "-w", "ws", "-n", "host", "--nodes", "1", "--allow-host-runs")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # neither podman nor docker on this machine
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"properties": _job("ubuntu", "echo hi")}))
    refused = bai("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", "j", "-f", str(path),
                  expect=4)  # fmt: skip
    assert (
        "no container runtime (podman, docker, apptainer) is installed for cluster c1"
        in refused.stderr
    )
    assert "--allow-host-runs" in refused.stderr
    warned = bai("job", "create", "-w", "ws", "-e", "exp", "-c", "host", "-n", "j", "-f", str(path))
    assert (
        "WARNING: no container runtime (podman, docker, apptainer) is installed: the job runs on the host, not in image ubuntu"
        in warned.stderr
    )


def _processes(cmdline: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if " ".join(proc.info["cmdline"] or []) == cmdline and proc.info["status"] != "zombie":
            found.append(proc)
    return found


def _processes_with(word: str) -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"]) if word in (p.info["cmdline"] or [])]


def _watch_command_lines(bai: Bai, job: str, secret: str, timeout: float = 60) -> list[str]:
    """Every command line that showed ``secret`` while the job ran (``ps`` shows them all)."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in psutil.process_iter(["cmdline"]):
            line = " ".join(proc.info["cmdline"] or [])
            if secret in line:
                seen.append(line)
        state = bai.json("job", "show", "-w", "ws", "-e", "exp", "-n", job)["executionState"]
        if state in ("succeeded", "failed"):
            break
        time.sleep(0.02)
    return seen

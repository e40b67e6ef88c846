"""The container command lines, as pure functions (no runtime needed)."""

from pathlib import Path

import pytest

from openbai.plan.job_plan import ContainerSpec, NodeLimits
from openbai.runtime.containers import (
    KEEPER,
    RUNTIMES,
    JobUser,
    Seal,
    bind_paths,
    exec_argv,
    gpu_options,
    has_command_argv,
    image_exists_argv,
    image_name,
    login_argv,
    pull_argv,
    registry_host,
    remove_argv,
    repository,
    run_argv,
    signal_argv,
    task_request,
    task_script,
    wait_task_argv,
)
from openbai.runtime.job_container import must_pull, note_login_pull


def test_container_is_started_once_with_the_job_tree_at_the_same_paths() -> None:
    spec = ContainerSpec(image="tensorflow/tensorflow:1.8.0-gpu", shm_size="16gb")
    argv = run_argv("podman", spec, "openbai-x-0", [Path("/n/0"), Path("/runs/u/shared")])
    assert argv[:6] == ["podman", "run", "-i", "--rm", "--name", "openbai-x-0"]
    assert argv[6:10] == ["--network", "host", "--uts", "host"]
    assert argv[10:12] == ["--pull", "never"]  # a missing image is pulled apart, logged in
    # podman would hand the container its client's proxy variables: the runner's
    assert argv[12] == "--http-proxy=false"
    assert argv[13:15] == ["--shm-size", "16gb"]
    assert "/n/0:/n/0:rslave" in argv and "/runs/u/shared:/runs/u/shared:rslave" in argv
    assert "-e" not in argv  # the job's variables go to each exec, not to the container
    assert argv[-5:] == ["--entrypoint", "sh", "tensorflow/tensorflow:1.8.0-gpu", "-c", KEEPER]


def test_docker_takes_the_same_arguments_but_podmans_own() -> None:
    spec = ContainerSpec(image="ubuntu:16.04")
    podman = run_argv("podman", spec, "c", [Path("/n")])
    podman.remove("--http-proxy=false")  # docker hands the container no client variable
    assert run_argv("docker", spec, "c", [Path("/n")]) == ["docker", *podman[1:]]
    assert "--shm-size" not in podman


def test_tasks_run_inside_with_bash_their_output_straight_to_the_files() -> None:
    out, err = Path("/logs/stdout.txt"), Path("/logs/std err.txt")
    argv = exec_argv("docker", "c", Path("/t"), ["B", "A", "B"], "echo $A", out, err)
    assert argv[:9] == ["docker", "exec", "-i", "-w", "/t", "-e", "A", "-e", "B"]
    assert argv[9:12] == ["c", "bash", "-c"]
    script = argv[12]
    assert script == task_script("echo $A", out, err)
    assert script.splitlines()[0] == "exec >>/logs/stdout.txt 2>>'/logs/std err.txt'"
    assert script.splitlines()[1:] == ["echo $A"]


def test_a_task_request_is_one_line_and_its_host_process_carries_no_value() -> None:
    fifo, out, err = Path("/runs/u/node-0.exit-codes/task-0-ab"), Path("/o"), Path("/e")
    line = task_request(fifo, Path("/t"), {"SECRET": "pw-1\nit's"}, "echo\nhi", out, err)
    assert line.endswith(b"\n") and line.count(b"\n") == 1  # newlines travel as $nl
    assert b"'SECRET=pw-1'\"$nl\"'it'\\''s'" in line
    assert wait_task_argv(fifo)[-1] == str(fifo)
    assert all("pw-1" not in arg for arg in wait_task_argv(fifo))
    with pytest.raises(ValueError, match="'A-B'"):
        task_request(fifo, Path("/t"), {"A-B": "1"}, "true", out, err)


def test_no_value_is_ever_on_a_command_line() -> None:
    spec = ContainerSpec(
        image="team/img:1", server_url="https://reg.example.com/", username="u", password="pw-1"
    )
    argvs = [
        run_argv("podman", spec, "c", [Path("/n")]),
        exec_argv("podman", "c", Path("/t"), ["SECRET"], "run", Path("/o"), Path("/e")),
        login_argv("podman", spec, Path("/runs/u/auth")),
        login_argv("docker", spec, Path("/runs/u/auth")),
        pull_argv("podman", image_name(spec), Path("/runs/u/auth")),
    ]
    assert all("pw-1" not in arg for argv in argvs for arg in argv)
    assert all(not arg.startswith("--creds") for argv in argvs for arg in argv)


def test_registry_login_goes_to_a_per_job_file_with_the_password_on_stdin() -> None:
    spec = ContainerSpec(image="team/img:1", server_url="reg.example.com", username="robot")
    auth = Path("/runs/u/registry-auth-0")
    assert login_argv("podman", spec, auth) == [
        "podman",
        "login",
        "--authfile",
        "/runs/u/registry-auth-0/auth.json",
        "--username",
        "robot",
        "--password-stdin",
        "reg.example.com",
    ]
    assert login_argv("docker", spec, auth) == [
        "docker",
        "--config",
        "/runs/u/registry-auth-0",
        "login",
        "--username",
        "robot",
        "--password-stdin",
        "reg.example.com",
    ]
    assert pull_argv("podman", "reg.example.com/team/img:1", auth) == [
        "podman",
        "pull",
        "--authfile",
        "/runs/u/registry-auth-0/auth.json",
        "reg.example.com/team/img:1",
    ]
    assert pull_argv("docker", "i", auth) == ["docker", "--config", str(auth), "pull", "i"]
    assert pull_argv("podman", "i", None) == ["podman", "pull", "i"]


def test_images_are_looked_up_locally_first() -> None:
    assert image_exists_argv("podman", "i:1") == ["podman", "image", "exists", "i:1"]
    assert (image_exists_argv("docker", "i:1") or [])[:3] == ["docker", "image", "inspect"]
    assert image_exists_argv("apptainer", "i:1") is None  # it caches what it converts


USER = JobUser(995, 993, "openbai-job", Path("/n/0/jobs/ws/e/j"))
LIMITS = NodeLimits(cpus=1.5, memory_bytes=200 * 2**20, processes=64)


def test_a_sealed_container_runs_as_the_job_user_within_the_slots_limits() -> None:
    spec = ContainerSpec(image="ubuntu")
    argv = run_argv("podman", spec, "c", [Path("/n")], seal=Seal(USER, LIMITS))
    options = " ".join(argv[: argv.index("--entrypoint")])
    # podman: the container's root is the job user on the host, and no other host id
    assert "--security-opt no-new-privileges --cap-drop all" in options
    assert "--uidmap 0:995:1 --gidmap 0:993:1" in options
    assert "--user" not in argv and "--userns" not in options
    assert "APT::Sandbox::User" in argv[-1]  # apt cannot switch to its _apt user there
    assert "--cpus 1.5" in options
    assert f"--memory {200 * 2**20} --memory-swap {200 * 2**20}" in options  # no swap past it
    assert "--pids-limit 64" in options
    assert "--pid" not in argv and "--privileged" not in argv  # its own PID namespace
    docker = run_argv("docker", spec, "c", [Path("/n")], seal=Seal(USER, LIMITS))
    assert "--user" in docker and "--uidmap" not in docker  # no per-container map in docker
    assert "APT::Sandbox::User" not in docker[-1]
    # --no-sandbox: the image's user, still the limits
    open_ = run_argv("podman", spec, "c", [Path("/n")], seal=Seal(None, LIMITS, confined=False))
    assert "--user" not in open_ and "no-new-privileges" not in open_
    assert "--pids-limit" in open_
    # a runner that is not root: its rootless container's root keeps its (namespaced) caps
    rootless = run_argv("podman", spec, "c", [Path("/n")], seal=Seal(None, LIMITS))
    assert "no-new-privileges" in rootless and "--cap-drop" not in rootless
    assert "--uidmap" not in rootless
    unsealed = run_argv("podman", spec, "c", [Path("/n")])
    assert "--user" not in unsealed and "--memory" not in unsealed


def test_the_runtimes_are_looked_for_in_order() -> None:
    assert RUNTIMES == ("podman", "docker", "apptainer")


def test_apptainer_runs_an_instance_with_binds_and_nv() -> None:
    """apptainer is not in Debian (so not installed here): only the command lines it gets
    are checked."""
    spec = ContainerSpec(image="team/img:1", server_url="reg.example.com")
    seal = Seal(USER, LIMITS)
    argv = run_argv("apptainer", spec, "c", [Path("/n/0"), Path("/n/0/x"), Path("/etc")], [2, 3],
                    seal=seal)  # fmt: skip
    assert argv[:6] == ["apptainer", "instance", "start", "--contain", "--pid", "--writable-tmpfs"]
    assert argv[-2:] == ["docker://reg.example.com/team/img:1", "c"]
    assert argv.count("--nv") == 1  # every GPU: CUDA_VISIBLE_DEVICES picks the node's
    assert ["--bind", "/n/0:/n/0"] == [a for a in argv if a in ("--bind", "/n/0:/n/0")]
    assert "/etc:/etc" not in argv and "-v" not in argv
    assert "--security" in argv and "uid:995,gid:993" in argv
    assert "--pids-limit" in argv and "--memory" in argv
    assert "no-new-privileges" not in argv  # apptainer's own default
    sif = run_argv("apptainer", ContainerSpec(image="/images/tf.sif"), "c", [])
    assert sif[-2:] == ["/images/tf.sif", "c"]
    assert "--nv" not in sif

    task = exec_argv("apptainer", "c", Path("/t"), ["SECRET"], "run", Path("/o"), Path("/e"),
                     seal=seal)  # fmt: skip
    assert task[:6] == ["apptainer", "exec", "--security", "uid:995,gid:993", "--pwd", "/t"]
    assert task[6:9] == ["instance://c", "bash", "-c"]
    assert "SECRET" not in task  # the client's environment reaches the task
    assert signal_argv("apptainer", "c", "TERM")[:3] == ["apptainer", "exec", "instance://c"]
    assert has_command_argv("apptainer", "c", "mpirun")[2] == "instance://c"
    assert remove_argv("apptainer", "c") == ["apptainer", "instance", "stop", "--force", "c"]


@pytest.mark.parametrize(
    ("server", "image", "expected"),
    [
        (None, "ubuntu", "ubuntu"),
        ("reg.example.com", "team/img:1", "reg.example.com/team/img:1"),
        ("reg.example.com", "reg.example.com/team/img:1", "reg.example.com/team/img:1"),
        ("https://nvcr.io/", "nvidia/tensorflow:18.04-py3", "nvcr.io/nvidia/tensorflow:18.04-py3"),
    ],
)
def test_private_registry_prefix(server: str | None, image: str, expected: str) -> None:
    assert image_name(ContainerSpec(image=image, server_url=server)) == expected


def test_docker_hub_is_the_default_registry() -> None:
    assert registry_host(ContainerSpec(image="team/private")) == "docker.io"


def test_binds_are_each_path_once_and_never_the_systems_own() -> None:
    paths = [
        Path("/data/node/0"),
        Path("/data/node/0/jobs/x/mounts/logs/seg/stdouterr"),
        Path("/root/.openbai/storage/acct/file/logs"),
        Path("/root/.openbai/storage/acct/file/logs"),
        Path("/etc"),
        Path("/usr/local/lib"),
        Path("/tmp"),
        Path("/proc/self"),
        Path("/var/lib/openbai/nodes"),
        Path("/"),
        Path("relative"),
    ]
    assert bind_paths(paths) == [
        Path("/data/node/0"),
        Path("/var/lib/openbai/nodes"),
        Path("/root/.openbai/storage/acct/file/logs"),
    ]


def test_read_only_volumes_are_bound_read_only_inside_or_beside_writable_ones() -> None:
    spec = ContainerSpec(image="img:1")
    binds = [Path("/n/0/mounts"), Path("/st/acct/blob/data"), Path("/st/acct/file/logs")]
    read_only = [Path("/st/acct/blob/data"), Path("/n/0/mounts/copy")]
    argv = run_argv("podman", spec, "c", binds, read_only=read_only)
    shown = [argv[i + 1] for i, a in enumerate(argv) if a == "-v" and argv[i + 1] != "/sys:/sys:ro"]
    assert shown == [
        "/n/0/mounts:/n/0/mounts:rslave",
        "/st/acct/file/logs:/st/acct/file/logs:rslave",
        "/n/0/mounts/copy:/n/0/mounts/copy:ro,rslave",
        "/st/acct/blob/data:/st/acct/blob/data:ro,rslave",
    ]
    apptainer = run_argv("apptainer", spec, "c", binds, read_only=read_only)
    assert "/st/acct/blob/data:/st/acct/blob/data:ro" in apptainer
    assert "/st/acct/file/logs:/st/acct/file/logs" in apptainer


def test_signals_reach_every_process_but_the_keeper() -> None:
    argv = signal_argv("podman", "c", "TERM")
    assert argv[:3] == ["podman", "exec", "c"]
    assert "kill -TERM -1" in argv[-1]


def test_an_image_pulled_with_a_login_is_pulled_first_however_a_job_spells_it(
    tmp_path: Path,
) -> None:
    """Any tag or digest of its repository, with or without the registry (the runtime finds
    a name without one among its images under any registry), or an image id."""
    private = ContainerSpec("team/private:1", server_url="https://127.0.0.1:5000")
    assert not must_pull("podman", ContainerSpec("team/private:1"), tmp_path)
    note_login_pull(tmp_path, private)
    for image in (
        "127.0.0.1:5000/team/private:1",
        "127.0.0.1:5000/team/private:2",
        "127.0.0.1:5000/team/private@sha256:" + "a" * 64,
        "team/private",
        "0123456789ab",
    ):
        assert must_pull("podman", ContainerSpec(image), tmp_path), image
    for image in ("127.0.0.1:5001/team/private:1", "localhost/openbai/test-bookworm:3", "x/y"):
        assert not must_pull("podman", ContainerSpec(image), tmp_path), image
    # a job with credentials logs in and pulls every time; apptainer keeps its own cache
    assert must_pull("podman", private._replace(username="u", password="p"), tmp_path / "n")
    assert not must_pull("apptainer", ContainerSpec("team/private:1"), tmp_path)


def test_repositories_as_docker_hub_and_registries_spell_them() -> None:
    assert repository("ubuntu:16.04") == "docker.io/library/ubuntu"
    assert repository("docker.io/ubuntu") == "docker.io/library/ubuntu"
    assert repository("tensorflow/tensorflow:1.8.0-gpu") == "docker.io/tensorflow/tensorflow"
    assert repository("Registry.Example.com:443/a/b:c@sha256:0") == "registry.example.com:443/a/b"
    assert repository("localhost/openbai/test-bookworm:3") == "localhost/openbai/test-bookworm"


def test_no_image_names_its_own_gpus_to_nvidias_runtime_hook() -> None:
    """An image's ``ENV NVIDIA_VISIBLE_DEVICES=all`` would have NVIDIA's hook (docker's
    default runtime, podman's legacy OCI hook) hand the container every GPU of the machine."""
    void = ["--env", "NVIDIA_VISIBLE_DEVICES=void"]
    assert gpu_options("podman", []) == void
    assert gpu_options("podman", [1]) == [*void, "--device", "nvidia.com/gpu=1"]
    assert gpu_options("docker", []) == void
    assert gpu_options("docker", [0, 2]) == ["--gpus", '"device=0,2"']  # docker sets it
    assert gpu_options("apptainer", []) == []
    argv = run_argv("podman", ContainerSpec("i"), "c", [Path("/n")])
    assert argv[argv.index("NVIDIA_VISIBLE_DEVICES=void") - 1] == "--env"

from pathlib import Path

from openbai.runtime.containers import exec_argv, image_name, run_argv
from openbai.runtime.plan import ContainerSpec


def test_container_is_started_once_with_the_job_tree_at_the_same_paths() -> None:
    spec = ContainerSpec(image="tensorflow/tensorflow:1.8.0-gpu", shm_size="16gb")
    argv = run_argv(
        "podman", spec, "openbai-x-0", [Path("/n/0"), Path("/runs/u")], {"A": "1", "SECRET": "s"}
    )
    assert argv[:8] == ["podman", "run", "-d", "--rm", "--name", "openbai-x-0", "--network", "host"]
    assert ["--shm-size", "16gb"] == argv[8:10]
    assert "/n/0:/n/0:rslave" in argv and "/runs/u:/runs/u:rslave" in argv
    assert "s" not in argv  # values come from the environment, never the command line
    assert argv[-3:] == ["sleep", "tensorflow/tensorflow:1.8.0-gpu", "infinity"]


def test_tasks_run_inside_with_bash() -> None:
    assert exec_argv("docker", "c", Path("/t"), {"B": "2"}, "echo hi") == [
        "docker",
        "exec",
        "-i",
        "-w",
        "/t",
        "-e",
        "B",
        "c",
        "bash",
        "-c",
        "echo hi",
    ]


def test_private_registry_prefix() -> None:
    assert (
        image_name(ContainerSpec(image="team/img:1", server_url="reg.example.com"))
        == "reg.example.com/team/img:1"
    )
    assert (
        image_name(ContainerSpec(image="reg.example.com/team/img:1", server_url="reg.example.com"))
        == "reg.example.com/team/img:1"
    )

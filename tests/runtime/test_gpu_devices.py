"""Which device files a task's sandbox binds for its node's GPUs: the driver's layout as it
lies on a machine with four NVIDIA boards (a copy in a temporary folder; this machine has no
GPU), numbered as NVML numbers them, in PCI bus order."""

from __future__ import annotations

from pathlib import Path

import pytest

from openbai.runtime.gpu_devices import driver_view, gpu_devices

#: PCI address -> the driver's minor number: not in the same order (the driver numbers boards
#: as it probes them), so NVML index 0 (the lowest address) is /dev/nvidia1
BOARDS = {"0000:1a:00.0": 1, "0000:3b:00.0": 0, "0000:88:00.0": 3, "0000:b1:00.0": 2}
SHARED = ["nvidia-caps", "nvidia-modeset", "nvidia-uvm", "nvidia-uvm-tools", "nvidiactl"]


@pytest.fixture
def machine(tmp_path: Path) -> dict[str, Path]:
    dev, driver, sys_drm = tmp_path / "dev", tmp_path / "driver", tmp_path / "drm"
    (dev / "dri").mkdir(parents=True)
    (dev / "nvidia-caps").mkdir()
    for name in SHARED[1:]:
        (dev / name).touch()
    for k, (address, minor) in enumerate(sorted(BOARDS.items())):
        (dev / f"nvidia{minor}").touch()
        (driver / address).mkdir(parents=True)
        (driver / address / "information").write_text(
            f"Model: \t\t NVIDIA H100\nIRQ:   \t\t 42\nDevice Minor: \t {minor}\nBus Type: \t PCIe\n"
        )
        pci = tmp_path / "pci" / address
        pci.mkdir(parents=True)
        for node in (f"card{k}", f"renderD{128 + k}"):
            (dev / "dri" / node).touch()
            (sys_drm / node).mkdir(parents=True)
            (sys_drm / node / "device").symlink_to(pci)
    return {"dev": dev, "driver": driver, "sys_drm": sys_drm}


def names(paths: list[Path], dev: Path) -> list[str]:
    return sorted(str(p.relative_to(dev)) for p in paths)


def test_a_node_gets_its_own_gpus_files_and_the_shared_ones(machine: dict[str, Path]) -> None:
    dev = machine["dev"]
    # NVML's 1 and 2: the second and third boards by PCI address, minors 0 and 3
    found = names(gpu_devices([1, 2], **machine), dev)
    assert found == sorted(
        [
            *SHARED,
            "nvidia0",
            "nvidia3",
            "dri/card1",
            "dri/renderD129",
            "dri/card2",
            "dri/renderD130",
        ]
    )


def test_a_node_without_gpus_gets_only_the_shared_files(machine: dict[str, Path]) -> None:
    assert names(gpu_devices([], **machine), machine["dev"]) == SHARED


def test_gpus_a_scheduler_assigned_are_all_bound(machine: dict[str, Path]) -> None:
    """None: Slurm chose the GPUs (and fences its devices itself)."""
    found = names(gpu_devices(None, **machine), machine["dev"])
    dri = [*(f"dri/card{k}" for k in range(4)), *(f"dri/renderD{128 + k}" for k in range(4))]
    assert found == sorted([*SHARED, *(f"nvidia{m}" for m in range(4)), *dri])


def test_without_the_drivers_information_the_index_is_the_minor(
    machine: dict[str, Path], tmp_path: Path
) -> None:
    """GPUs named by OPENBAI_GPUS over device files made by hand, no NVIDIA driver: no DRI
    node can be told to belong to a GPU, none is bound."""
    without = {**machine, "driver": tmp_path / "no-driver"}
    assert names(gpu_devices([1, 2], **without), machine["dev"]) == sorted(
        [*SHARED, "nvidia1", "nvidia2"]
    )


def test_an_index_past_the_machines_boards_binds_nothing_more(machine: dict[str, Path]) -> None:
    assert names(gpu_devices([7], **machine), machine["dev"]) == SHARED


def test_the_drivers_board_list_shows_the_nodes_boards_alone(machine: dict[str, Path]) -> None:
    driver = machine["driver"]
    assert driver_view([1, 2], driver) == {
        driver: [driver / "0000:3b:00.0", driver / "0000:88:00.0"]
    }
    assert driver_view([], driver) == {driver: []}


def test_the_drivers_board_list_is_left_whole_where_nothing_narrows_it(
    machine: dict[str, Path], tmp_path: Path
) -> None:
    assert driver_view(None, machine["driver"]) == {}  # the scheduler's GPUs: all are bound
    assert driver_view([0], tmp_path / "no-driver") == {}

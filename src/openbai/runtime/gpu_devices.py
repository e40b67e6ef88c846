"""The device files a sandboxed task gets for its node's GPUs, and no other GPU's.

A task sees the host's ``/dev`` only through what its sandbox binds: NVIDIA's shared control
devices (``nvidiactl``, ``nvidia-uvm``, ``nvidia-modeset``, ``nvidia-caps``) and, of the GPUs,
only its node's: each one's ``/dev/nvidiaN`` and its DRI nodes (``/dev/dri/renderD*``), so a
job that clears ``CUDA_VISIBLE_DEVICES`` still finds no GPU of another slot. The driver's list
of boards (``/proc/driver/nvidia/gpus``, where NVML looks for them) shows the node's boards
alone, as libnvidia-container shows a container's.

openbai numbers GPUs as NVML does, in PCI bus order; the driver numbers its device files by
minor number, which the driver's ``/proc/driver/nvidia/gpus/<PCI address>/information`` gives
for each board. Without that file (no NVIDIA driver: GPUs named by ``OPENBAI_GPUS`` over
device files made by hand) the index is taken for the minor number.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

DEV = Path("/dev")
#: one folder per board, named by its PCI address
DRIVER_GPUS = Path("/proc/driver/nvidia/gpus")
SYS_DRM = Path("/sys/class/drm")

_MINOR = re.compile(r"^Device Minor:\s*(\d+)", re.MULTILINE)


def gpu_devices(
    gpus: Sequence[int] | None,
    *,
    dev: Path = DEV,
    driver: Path = DRIVER_GPUS,
    sys_drm: Path = SYS_DRM,
) -> list[Path]:
    """The device files for ``gpus`` (NVML indices) with the shared ones; every GPU's where
    ``gpus`` is None (a scheduler named them otherwise than by index)."""
    names = _listdir(dev)
    shared = [dev / n for n in names if n.startswith("nvidia") and not n[6:].isdigit()]
    if gpus is None:
        own = [dev / n for n in names if n.startswith("nvidia") and n[6:].isdigit()]
        own += [dev / "dri" / n for n in _listdir(dev / "dri")]
    else:
        boards = nvidia_boards(driver)
        own = []
        for index in gpus:
            if boards:
                if index >= len(boards):
                    continue  # not a GPU of this machine: nothing to bind
                address, minor = boards[index]
                own += [dev / "dri" / n for n in dri_nodes(address, dev / "dri", sys_drm)]
            else:
                minor = index
            own.append(dev / f"nvidia{minor}")
    return sorted({p for p in [*shared, *own] if os.path.lexists(p)})


class GpuView(NamedTuple):
    """What a sandbox shows of the machine's GPUs: device files to bind, and folders shown
    with only some of their entries (the driver's list of boards)."""

    devices: list[Path]
    narrowed: dict[Path, list[Path]]


def gpu_view(gpus: Sequence[int] | None) -> GpuView:
    """The node's GPUs (NVML indices; None: every GPU) as its sandbox shows them."""
    return GpuView(gpu_devices(gpus), driver_view(gpus))


def driver_view(gpus: Sequence[int] | None, driver: Path = DRIVER_GPUS) -> dict[Path, list[Path]]:
    """The driver's board list as the node's tasks see it: ``{folder: the boards kept}``, the
    node's boards of ``gpus`` (NVML indices); nothing to narrow where ``gpus`` is None (every
    GPU's files are bound) or the machine has no NVIDIA driver."""
    boards = nvidia_boards(driver)
    if gpus is None or not boards:
        return {}
    return {driver: [driver / boards[i][0] for i in gpus if i < len(boards)]}


def sandboxed_indices(gpus: Sequence[int]) -> list[int]:
    """How a task shown only ``gpus``' device files numbers them: CUDA counts the GPUs it can
    open from 0 (as in a container, or under Slurm's device constraint)."""
    return list(range(len(gpus)))


def nvidia_boards(driver: Path = DRIVER_GPUS) -> list[tuple[str, int]]:
    """Each board the NVIDIA driver has, as (PCI address, minor number), in PCI bus order
    (NVML's indices); the address as the driver names its folder."""
    boards = []
    for address in sorted(_listdir(driver), key=str.lower):
        try:
            text = (driver / address / "information").read_text()
        except OSError:
            continue
        found = _MINOR.search(text)
        if found:
            boards.append((address, int(found.group(1))))
    return boards


def dri_nodes(address: str, dri: Path = DEV / "dri", sys_drm: Path = SYS_DRM) -> list[str]:
    """The names in ``/dev/dri`` of the board at PCI ``address``."""
    found = []
    for name in _listdir(dri):
        try:
            device = os.path.realpath(sys_drm / name / "device")
        except OSError:
            continue
        if os.path.basename(device).lower() == address.lower():
            found.append(name)
    return found


def _listdir(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []

"""The GPUs of this machine that openbai may hand out to the slots of local clusters.

NVML (``nvidia-ml-py``, NVIDIA's own binding) is asked when the installation names none: it
lists the GPUs the driver sees, by the same indices as ``nvidia-smi``. ``OPENBAI_GPUS`` (or
``gpus`` in config.json) names them instead: a subset of the machine's GPUs, or none at all.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MachineGpus:
    indices: tuple[int, ...]
    #: where they were found, for messages: "OPENBAI_GPUS", "NVML", or why there are none
    source: str


def nvml_gpus() -> tuple[int, ...] | str:
    """The indices NVML reports, or why it could not be asked (no driver, no library)."""
    try:
        import pynvml  # type: ignore[import-untyped]  # NVIDIA ships no type hints
    except ImportError:
        return "nvidia-ml-py is not installed"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return f"NVML could not be initialised: {exc}"
    try:
        return tuple(range(int(pynvml.nvmlDeviceGetCount())))
    except pynvml.NVMLError as exc:
        return f"NVML could not count the GPUs: {exc}"
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass


def machine_gpus(configured: tuple[int, ...] | None) -> MachineGpus:
    """What may be handed out: the configured GPUs, else those NVML finds."""
    if configured is not None:
        return MachineGpus(configured, "OPENBAI_GPUS")
    found = nvml_gpus()
    if isinstance(found, str):
        return MachineGpus((), found)
    return MachineGpus(found, "NVML")

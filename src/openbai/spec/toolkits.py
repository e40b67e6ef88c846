"""The nine toolkit settings of a job: what to launch, and how many processes.

A job names exactly one of these objects (``cntkSettings``, ``pyTorchSettings`` ...); the
service reports which as ``toolType``. :data:`TOOL_TYPES` is the one table from the job
field to that tool type, in swagger order. Each class checks only its own fields; rules that
need the job (``parameterServerCount`` ≤ ``nodeCount``) live in :mod:`openbai.spec.job`.

Enum-like strings are matched case-insensitively. ``languageType`` is stored in its
canonical spelling (``Python``); ``communicationBackend`` is stored as written, because it
is handed to the user's script (the recipes write ``"gloo"``, the swagger says ``Gloo``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from openbai.spec.base import FieldError, WireModel
from openbai.spec.common import NonEmptyStr, StrictInt, choice

__all__ = [
    "CNTKSettings",
    "Caffe2Settings",
    "CaffeSettings",
    "ChainerSettings",
    "CustomMpiSettings",
    "CustomToolkitSettings",
    "HorovodSettings",
    "PyTorchSettings",
    "TOOL_TYPES",
    "TensorFlowSettings",
    "ToolType",
    "ToolkitSettings",
]

#: more ranks than any node could hold: a count past it is a mistake (a slot runs 4,096
#: processes by default), refused at create rather than failing the job at mpirun
MAX_PROCESSES = 65_536
ProcessCount = Annotated[StrictInt, Field(ge=1, le=MAX_PROCESSES)]
"""How many processes to start; Batch AI's default (when absent) is the job's nodeCount."""

TaskCount = Annotated[StrictInt, Field(ge=0)]

ToolType = Literal[
    "cntk", "pytorch", "tensorflow", "caffe", "caffe2", "chainer", "custom", "mpi", "horovod"
]

TOOL_TYPES: dict[str, ToolType] = {
    "cntk_settings": "cntk",
    "py_torch_settings": "pytorch",
    "tensor_flow_settings": "tensorflow",
    "caffe_settings": "caffe",
    "caffe2_settings": "caffe2",
    "chainer_settings": "chainer",
    "custom_toolkit_settings": "custom",
    "custom_mpi_settings": "mpi",
    "horovod_settings": "horovod",
}
"""Job field name → ``toolType``, in the order the swagger lists the fields."""


class CNTKSettings(WireModel):
    """CNTK, as a BrainScript config (``configFilePath``) or a Python script.

    When ``languageType`` is absent it is inferred from the path given (the 2017 BrainScript
    recipe omits it) and stored, so every later reader sees one answer.
    """

    language_type: Annotated[
        Literal["BrainScript", "Python"] | None, choice("BrainScript", "Python")
    ] = None
    config_file_path: str | None = None
    python_script_file_path: str | None = None
    python_interpreter_path: str | None = None
    command_line_args: str | None = None
    process_count: ProcessCount | None = None

    @model_validator(mode="after")
    def _paths_match_language(self) -> CNTKSettings:
        if self.language_type is None:
            if self.python_script_file_path is not None:
                self.language_type = "Python"
            elif self.config_file_path is not None:
                self.language_type = "BrainScript"
            else:
                raise FieldError(
                    "cntkSettings needs configFilePath (BrainScript) "
                    "or pythonScriptFilePath (Python)"
                )
        if self.language_type == "BrainScript":
            _forbid(self.python_script_file_path, "pythonScriptFilePath", "BrainScript")
            _forbid(self.python_interpreter_path, "pythonInterpreterPath", "BrainScript")
            _require(self.config_file_path, "configFilePath", "BrainScript")
        else:
            _forbid(self.config_file_path, "configFilePath", "Python")
            _require(self.python_script_file_path, "pythonScriptFilePath", "Python")
        return self


def _forbid(value: str | None, field: str, language: str) -> None:
    if value is not None:
        raise FieldError(f"{field} cannot be used with languageType {language}", field)


def _require(value: str | None, field: str, language: str) -> None:
    if not value:
        raise FieldError(f"{field} is required for languageType {language}", field)


def _backend(value: str) -> str:
    if value.lower() not in ("tcp", "gloo", "mpi"):
        raise ValueError(f"must be 'TCP', 'Gloo' or 'MPI', got {value!r}")
    return value


class PyTorchSettings(WireModel):
    """PyTorch; ``communicationBackend`` is needed only for distributed jobs.

    The backend is checked ignoring case but kept as written: it reaches the script as
    ``$AZ_BATCHAI_PYTORCH_BACKEND`` (the recipe passes it to ``--dist-backend``), and old
    PyTorch releases want the lower-case name the recipes use.
    """

    python_script_file_path: NonEmptyStr
    python_interpreter_path: str | None = None
    command_line_args: str | None = None
    process_count: ProcessCount | None = None
    communication_backend: Annotated[str, AfterValidator(_backend)] | None = None


class TensorFlowSettings(WireModel):
    """TensorFlow with separate command lines for master, workers and parameter servers."""

    python_script_file_path: NonEmptyStr
    python_interpreter_path: str | None = None
    master_command_line_args: str | None = None
    worker_command_line_args: str | None = None
    parameter_server_command_line_args: str | None = None
    worker_count: TaskCount | None = None
    parameter_server_count: TaskCount | None = None


class CaffeSettings(WireModel):
    """Caffe, from a solver config file or from a Python script (exactly one of the two)."""

    config_file_path: str | None = None
    python_script_file_path: str | None = None
    python_interpreter_path: str | None = None
    command_line_args: str | None = None
    process_count: ProcessCount | None = None

    @model_validator(mode="after")
    def _one_entry_point(self) -> CaffeSettings:
        if self.config_file_path is not None and self.python_script_file_path is not None:
            raise FieldError(
                "give configFilePath or pythonScriptFilePath, not both", "pythonScriptFilePath"
            )
        if not self.config_file_path and not self.python_script_file_path:
            raise FieldError("caffeSettings needs configFilePath or pythonScriptFilePath")
        if self.python_interpreter_path is not None and self.python_script_file_path is None:
            raise FieldError(
                "pythonInterpreterPath can be given only with pythonScriptFilePath",
                "pythonInterpreterPath",
            )
        return self


class Caffe2Settings(WireModel):
    """Caffe2: one Python script per node (no processCount)."""

    python_script_file_path: NonEmptyStr
    python_interpreter_path: str | None = None
    command_line_args: str | None = None


class ChainerSettings(WireModel):
    """Chainer(MN): a Python script launched through MPI."""

    python_script_file_path: NonEmptyStr
    python_interpreter_path: str | None = None
    command_line_args: str | None = None
    process_count: ProcessCount | None = None


class CustomToolkitSettings(WireModel):
    """Any command line, run on the job's master node."""

    command_line: str | None = None


class CustomMpiSettings(WireModel):
    """A command line started by the MPI runtime on every node of the job."""

    command_line: NonEmptyStr
    process_count: ProcessCount | None = None


class HorovodSettings(WireModel):
    """Horovod: a Python script launched through MPI."""

    python_script_file_path: NonEmptyStr
    python_interpreter_path: str | None = None
    command_line_args: str | None = None
    process_count: ProcessCount | None = None


ToolkitSettings = (
    CNTKSettings
    | PyTorchSettings
    | TensorFlowSettings
    | CaffeSettings
    | Caffe2Settings
    | ChainerSettings
    | CustomToolkitSettings
    | CustomMpiSettings
    | HorovodSettings
)
"""The settings object of any one toolkit."""

"""The job a user submits: ``JobCreateParameters`` of Batch AI 2018-05-01 (request side).

This is the body of ``PUT .../experiments/{e}/jobs/{j}`` and the content of a job.json.
Every field of the swagger's ``JobBaseProperties`` is here, with these choices:

* ``cluster`` is optional: the CLI may supply it (``-c``); the service must check that a
  job ends up with one.
* ``nodeCount`` is required (the swagger and the SDK require it) and limited to 1-100.
* ``constraints.maxWallClockTime`` defaults to 7 days and is always present once parsed.
* the legacy key ``priority`` (``"low"|"normal"|"high"``) is read as ``schedulingPriority``;
  the 2017 integer priorities are ignored, as any unknown key.
* exactly one toolkit settings object; :attr:`JobBaseProperties.tool_type` names it.
* output directory ids may not be ``stdouterr``: that id is the job's standard output.

Read-only response fields (``toolType``, states, times ...) are not modelled here.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from openbai.spec.base import FieldError, WireModel, secret_field
from openbai.spec.common import (
    MAX_WALL_CLOCK_TIME,
    Duration,
    EnvironmentVariable,
    EnvironmentVariableWithSecretValue,
    KeyVaultSecretReference,
    NonEmptyStr,
    NullAsEmpty,
    PathPrefix,
    RelativePath,
    ResourceId,
    StrictInt,
    check_unique_names,
    choice,
)
from openbai.spec.limits import Command, Location, check_process_sizes
from openbai.spec.mounts import MountVolumes
from openbai.spec.toolkits import (
    TOOL_TYPES,
    Caffe2Settings,
    CaffeSettings,
    ChainerSettings,
    CNTKSettings,
    CustomMpiSettings,
    CustomToolkitSettings,
    HorovodSettings,
    PyTorchSettings,
    TensorFlowSettings,
    ToolkitSettings,
    ToolType,
)
from openbai.vocabulary import STDOUTERR

__all__ = [
    "ContainerSettings",
    "ImageSourceRegistry",
    "InputDirectory",
    "JobBaseProperties",
    "JobConstraints",
    "JobCreateParameters",
    "JobPreparation",
    "OutputDirectory",
    "PrivateRegistryCredentials",
    "SchedulingPriority",
]

SchedulingPriority = Literal["low", "normal", "high"]

_DIRECTORY_ID = re.compile(r"[A-Za-z0-9_]+")
_SHM_SIZE = re.compile(r"\d+([kmgt]b?|b)?", re.IGNORECASE)


#: a registry image (distribution's reference grammar): [host[:port]/]path[:tag][@digest]
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST_PART = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = rf"{_HOST_PART}(?:\.{_HOST_PART})*(?::[0-9]{{1,5}})?"
_REGISTRY_IMAGE = re.compile(
    rf"(?:{_HOST}/)?{_PATH_PART}(?:/{_PATH_PART})*"
    r"(?::\w[\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)
#: what apptainer also runs (openbai's extension): an image file, or a URI it pulls from
_APPTAINER_IMAGE = re.compile(r"(?:/|(?:docker|oras|library)://)[^\s\x00-\x1f\x7f]+")
_SERVER_URL = re.compile(rf"(?:https?://)?{_HOST}(?:/[\w.~-]+)*/?")


def _image(value: str) -> str:
    # it goes into the container runtime's command line: never an option
    if not (_REGISTRY_IMAGE.fullmatch(value) or _APPTAINER_IMAGE.fullmatch(value)):
        raise ValueError(
            f"{value!r} is not an image reference such as tensorflow/tensorflow:1.8.0-gpu or "
            "myregistry.azurecr.io/team/image:1"
        )
    return value


def _server_url(value: str) -> str:
    if not _SERVER_URL.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a registry address such as https://myregistry.azurecr.io"
        )
    return value


def _directory_id(value: str) -> str:
    if not _DIRECTORY_ID.fullmatch(value):
        raise ValueError(
            f"{value!r} may contain only letters, digits and '_' "
            "(it becomes part of an environment variable name)"
        )
    return value


def _shm_size(value: str) -> str:
    if not _SHM_SIZE.fullmatch(value):
        raise ValueError(f"{value!r} is not a size; use docker's format such as 16gb or 512m")
    return value


DirectoryId = Annotated[str, AfterValidator(_directory_id)]


class PrivateRegistryCredentials(WireModel):
    """Login to a private container registry: a password or a Key Vault reference."""

    username: NonEmptyStr
    password: str | None = secret_field()
    password_secret_reference: KeyVaultSecretReference | None = None

    @model_validator(mode="after")
    def _one_password(self) -> PrivateRegistryCredentials:
        if (self.password is None) == (self.password_secret_reference is None):
            raise FieldError("give exactly one of password or passwordSecretReference")
        return self


class ImageSourceRegistry(WireModel):
    """The container image; with a custom ``serverUrl`` the image name is fully qualified."""

    server_url: Annotated[str, AfterValidator(_server_url)] | None = None
    image: Annotated[str, AfterValidator(_image)]
    credentials: PrivateRegistryCredentials | None = None


class ContainerSettings(WireModel):
    """Run the job in this image; without it the job runs directly on the node."""

    image_source_registry: ImageSourceRegistry
    shm_size: Annotated[str, AfterValidator(_shm_size)] | None = None


class JobPreparation(WireModel):
    """A command run on every node before the toolkit starts; its failure fails the job."""

    command_line: NonEmptyStr


class InputDirectory(WireModel):
    """Exposed to the job as ``$AZ_BATCHAI_INPUT_<id>``."""

    id: DirectoryId
    path: NonEmptyStr


class OutputDirectory(WireModel):
    """``$AZ_BATCHAI_OUTPUT_<id>`` = ``<pathPrefix>/<job segment>/outputs[/<pathSuffix>]``."""

    # 2017-09-01-preview: the kind of output (model, logs, summary, custom) and whether to make
    # a new folder; both only informed Batch AI's portal
    legacy_keys = frozenset({"type", "createNew"})

    id: DirectoryId
    path_prefix: PathPrefix
    path_suffix: RelativePath | None = None

    @field_validator("id")
    @classmethod
    def _not_stdouterr(cls, value: str) -> str:
        if value.lower() == STDOUTERR:
            raise ValueError(f"{value!r} is reserved for the job's standard output")
        return value


class JobConstraints(WireModel):
    """Limits of a job; Batch AI terminated a job running past ``maxWallClockTime``."""

    max_wall_clock_time: Duration = MAX_WALL_CLOCK_TIME


class JobBaseProperties(WireModel):
    """Everything a job is made of (the ``properties`` of a job.json)."""

    # ``toolType`` is printed by GET (derived from the toolkit); the others are 2017's keys
    # (``priority`` is read by _legacy_priority when it names a 2018 priority)
    legacy_keys = frozenset({"toolType", "experimentName", "location", "priority"})

    scheduling_priority: Annotated[SchedulingPriority, choice("low", "normal", "high")] = "normal"
    cluster: ResourceId | None = None
    mount_volumes: MountVolumes | None = None
    node_count: Annotated[StrictInt, Field(ge=1, le=100)]
    container_settings: ContainerSettings | None = None
    cntk_settings: CNTKSettings | None = None
    py_torch_settings: PyTorchSettings | None = None
    tensor_flow_settings: TensorFlowSettings | None = None
    caffe_settings: CaffeSettings | None = None
    caffe2_settings: Caffe2Settings | None = None
    chainer_settings: ChainerSettings | None = None
    custom_toolkit_settings: CustomToolkitSettings | None = None
    custom_mpi_settings: CustomMpiSettings | None = None
    horovod_settings: HorovodSettings | None = None
    job_preparation: JobPreparation | None = None
    std_out_err_path_prefix: PathPrefix
    input_directories: Annotated[list[InputDirectory], NullAsEmpty] = []
    output_directories: Annotated[list[OutputDirectory], NullAsEmpty] = []
    environment_variables: Annotated[list[EnvironmentVariable], NullAsEmpty] = []
    secrets: Annotated[list[EnvironmentVariableWithSecretValue], NullAsEmpty] = []
    constraints: JobConstraints = Field(default_factory=JobConstraints)

    @model_validator(mode="before")
    @classmethod
    def _legacy_priority(cls, data: Any) -> Any:
        """Read the pre-2018 key ``priority`` when it holds a 2018 priority name."""
        if (
            isinstance(data, dict)
            and "schedulingPriority" not in data
            and "scheduling_priority" not in data
            and isinstance(data.get("priority"), str)
            and data["priority"].lower() in ("low", "normal", "high")
        ):
            return {**data, "schedulingPriority": data["priority"]}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> JobBaseProperties:
        self._check_one_toolkit()
        check_unique_names(
            [("inputDirectories", self.input_directories)],
            what="input directory id",
            key=lambda item: item.id,
            attr="id",
        )
        check_unique_names(
            [("outputDirectories", self.output_directories)],
            what="output directory id",
            key=lambda item: item.id,
            attr="id",
        )
        check_unique_names(
            [("environmentVariables", self.environment_variables), ("secrets", self.secrets)],
            what="environment variable name",
        )
        check_process_sizes(
            self._command_lines(),
            [("environmentVariables", self.environment_variables), ("secrets", self.secrets)],
        )
        tf = self.tensor_flow_settings
        if tf is not None and (tf.parameter_server_count or 0) > self.node_count:
            raise FieldError(
                f"parameterServerCount {tf.parameter_server_count} exceeds nodeCount "
                f"{self.node_count}",
                "tensorFlowSettings",
                "parameterServerCount",
            )
        return self

    def _check_one_toolkit(self) -> None:
        given = [name for name in TOOL_TYPES if getattr(self, name) is not None]
        aliases = {name: _alias(name) for name in TOOL_TYPES}
        if not given:
            raise FieldError(
                "a job needs exactly one of " + ", ".join(aliases.values()) + "; none is given"
            )
        if len(given) > 1:
            first, second = aliases[given[0]], aliases[given[1]]
            raise FieldError(
                f"a job needs exactly one toolkit settings object, but {first} and {second} "
                "are both given",
                second,
            )

    def _command_lines(self) -> list[Command]:
        """The toolkit's string fields as the command lines they are joined into (one per
        TensorFlow role), and the preparation's command line."""
        name = next(name for name in TOOL_TYPES if getattr(self, name) is not None)
        settings: ToolkitSettings = getattr(self, name)
        shared: list[tuple[Location, str | None]] = []
        roles: list[tuple[Location, str | None]] = []
        for field, info in type(settings).model_fields.items():
            value = getattr(settings, field)
            if isinstance(value, str):
                key = info.alias or field
                part = ((_alias(name), key), value)
                is_role = key.endswith("CommandLineArgs") and key != "commandLineArgs"
                (roles if is_role else shared).append(part)
        commands: list[Command] = [[*shared, role] for role in roles] or [shared]
        if self.job_preparation is not None:
            commands.append(
                [(("jobPreparation", "commandLine"), self.job_preparation.command_line)]
            )
        return commands

    @property
    def tool_type(self) -> ToolType:
        """``cntk``, ``pytorch``, ``tensorflow`` ... as GET job reports it in ``toolType``."""
        for name, tool_type in TOOL_TYPES.items():
            if getattr(self, name) is not None:
                return tool_type
        raise AssertionError("validated jobs have exactly one toolkit")

    @property
    def toolkit(self) -> ToolkitSettings:
        """The one toolkit settings object of this job."""
        for name in TOOL_TYPES:
            settings: ToolkitSettings | None = getattr(self, name)
            if settings is not None:
                return settings
        raise AssertionError("validated jobs have exactly one toolkit")


def _alias(name: str) -> str:
    return JobBaseProperties.model_fields[name].alias or name


class JobCreateParameters(WireModel):
    """The whole job.json / PUT body: ``{"properties": {...}}``."""

    legacy_keys = frozenset({"location"})  # 2017-09-01-preview put the region here

    properties: JobBaseProperties

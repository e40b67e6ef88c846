"""Pydantic models of the Batch AI 2018-05-01 resources (camelCase on the wire).

Request side only: what users send (job.json, cluster.json, PUT/PATCH bodies). Parse user
input with :func:`parse`, which raises :class:`~openbai.errors.SpecError` naming the exact
field (``properties.mountVolumes.azureFileShares[0].relativeMountPath``).
"""

from openbai.spec.base import WireModel, load_json_file, parse
from openbai.spec.cluster import (
    ClusterBaseProperties,
    ClusterCreateParameters,
    ClusterUpdateParameters,
    OpenBaiClusterSettings,
    ScaleSettings,
)
from openbai.spec.common import (
    Duration,
    EnvironmentVariable,
    EnvironmentVariableWithSecretValue,
    ResourceId,
    check_name,
    check_resource_group,
)
from openbai.spec.file_server import FileServerCreateParameters
from openbai.spec.job import JobBaseProperties, JobCreateParameters, OutputDirectory
from openbai.spec.mounts import (
    AzureBlobFileSystemReference,
    AzureFileShareReference,
    FileServerReference,
    MountVolumes,
    UnmanagedFileSystemReference,
)
from openbai.spec.placeholders import find_placeholders, substitute_placeholders
from openbai.spec.toolkits import ToolkitSettings, ToolType
from openbai.spec.workspace import WorkspaceCreateParameters, WorkspaceUpdateParameters

__all__ = [
    "AzureBlobFileSystemReference",
    "AzureFileShareReference",
    "ClusterBaseProperties",
    "ClusterCreateParameters",
    "ClusterUpdateParameters",
    "Duration",
    "EnvironmentVariable",
    "EnvironmentVariableWithSecretValue",
    "FileServerCreateParameters",
    "FileServerReference",
    "JobBaseProperties",
    "JobCreateParameters",
    "MountVolumes",
    "OpenBaiClusterSettings",
    "OutputDirectory",
    "ResourceId",
    "ScaleSettings",
    "ToolType",
    "ToolkitSettings",
    "UnmanagedFileSystemReference",
    "WireModel",
    "WorkspaceCreateParameters",
    "WorkspaceUpdateParameters",
    "check_name",
    "check_resource_group",
    "find_placeholders",
    "load_json_file",
    "parse",
    "substitute_placeholders",
]

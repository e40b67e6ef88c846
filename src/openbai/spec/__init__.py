"""Pydantic models of the Batch AI 2018-05-01 resources (camelCase on the wire).

Request side only: what users send (job.json, cluster.json, PUT/PATCH bodies). Parse user
input with :func:`parse`, which raises :class:`~openbai.errors.SpecError` naming the exact
field (``properties.mountVolumes.azureFileShares[0].relativeMountPath``).

Each name is imported on first use (PEP 562), so that a command reading only ``spec.times``
or ``spec.placeholders`` does not build every pydantic model of the package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

#: where each exported name lives
_HOMES: dict[str, str] = {
    "AzureBlobFileSystemReference": "openbai.spec.mounts",
    "AzureFileShareReference": "openbai.spec.mounts",
    "ClusterBaseProperties": "openbai.spec.cluster",
    "ClusterCreateParameters": "openbai.spec.cluster",
    "ClusterUpdateParameters": "openbai.spec.cluster",
    "Duration": "openbai.spec.common",
    "EnvironmentVariable": "openbai.spec.common",
    "EnvironmentVariableWithSecretValue": "openbai.spec.common",
    "FileServerCreateParameters": "openbai.spec.file_server",
    "FileServerReference": "openbai.spec.mounts",
    "JobBaseProperties": "openbai.spec.job",
    "JobCreateParameters": "openbai.spec.job",
    "MountVolumes": "openbai.spec.mounts",
    "OpenBaiClusterSettings": "openbai.spec.cluster",
    "OutputDirectory": "openbai.spec.job",
    "ResourceId": "openbai.spec.common",
    "ScaleSettings": "openbai.spec.cluster",
    "ToolType": "openbai.spec.toolkits",
    "ToolkitSettings": "openbai.spec.toolkits",
    "UnmanagedFileSystemReference": "openbai.spec.mounts",
    "WireModel": "openbai.spec.base",
    "WorkspaceCreateParameters": "openbai.spec.workspace",
    "WorkspaceUpdateParameters": "openbai.spec.workspace",
    "check_name": "openbai.spec.common",
    "check_resource_group": "openbai.spec.common",
    "find_placeholders": "openbai.spec.placeholders",
    "load_json_file": "openbai.spec.base",
    "parse": "openbai.spec.base",
    "substitute_placeholders": "openbai.spec.placeholders",
}


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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value

"""File servers: ``FileServerCreateParameters`` (the body of PUT and an nfs.json).

In Batch AI a file server was a VM exporting RAID-0 data disks over NFS to clusters of
the same subnet. openbai keeps the resource so that existing files and clients work; what
backs it (a local directory, an existing NFS export) is the service's business. Only the
request side is modelled; ``mountSettings`` and states are read-only response fields.

``publicIPsToAllow`` and ``diskSizeInGB`` are spellings the camelCase generator cannot
derive; they are given as validation/serialization aliases rather than ``alias=`` so that
Python callers (and mypy) keep the snake_case field names.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from openbai.spec.base import WireModel
from openbai.spec.common import NonEmptyStr, ResourceId, StrictInt, UserAccountSettings, choice

__all__ = [
    "DataDisks",
    "FileServerBaseProperties",
    "FileServerCreateParameters",
    "SshConfiguration",
]


class SshConfiguration(WireModel):
    """Who may log in: the admin account and, optionally, allowed source IP ranges."""

    public_ips_to_allow: Annotated[list[str] | None, Field(max_length=400)] = Field(
        default=None,
        validation_alias="publicIPsToAllow",
        serialization_alias="publicIPsToAllow",
    )
    user_account_settings: UserAccountSettings


#: the REST document's int32
INT32_MAX = 2**31 - 1


class DataDisks(WireModel):
    """The disks to create; several disks form one RAID-0 volume."""

    disk_size_in_gb: Annotated[StrictInt, Field(ge=1, le=INT32_MAX)] = Field(
        validation_alias="diskSizeInGB", serialization_alias="diskSizeInGB"
    )
    disk_count: Annotated[StrictInt, Field(ge=1, le=INT32_MAX)]
    storage_account_type: Annotated[
        Literal["Standard_LRS", "Premium_LRS"], choice("Standard_LRS", "Premium_LRS")
    ]
    caching_type: Annotated[
        Literal["none", "readonly", "readwrite"], choice("none", "readonly", "readwrite")
    ] = "none"


class FileServerBaseProperties(WireModel):
    """Everything a file server is made of."""

    vm_size: NonEmptyStr
    ssh_configuration: SshConfiguration
    data_disks: DataDisks
    subnet: ResourceId | None = None


class FileServerCreateParameters(WireModel):
    """The whole PUT body: ``{"properties": {...}}``."""

    legacy_keys = frozenset({"location", "tags"})  # 2017-09-01-preview's ARM envelope

    properties: FileServerBaseProperties

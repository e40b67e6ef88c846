"""The names in the explorer's paths, checked with the API's patterns, as dependencies."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Query

from openbai.spec.common import NAME_PATTERN, RESOURCE_GROUP_PATTERN
from openbai.storage.base import clean_path
from openbai.web.links import JobKey

#: the path of a job's page; its parts are under it
JOB_PATH = "/workspaces/{rg}/{ws}/experiments/{exp}/jobs/{job}"


def _name() -> Any:
    return Path(min_length=1, max_length=64, pattern=NAME_PATTERN.pattern)


ResourceGroup = Annotated[
    str, Path(min_length=1, max_length=90, pattern=RESOURCE_GROUP_PATTERN.pattern)
]
WorkspaceName = Annotated[str, _name()]
ExperimentName = Annotated[str, _name()]
JobName = Annotated[str, _name()]
#: an output directory id (``stdouterr`` or an ``outputDirectories`` id); checked by the job
DirectoryId = Annotated[str, Path(min_length=1, max_length=64)]
#: a path inside an output directory (checked by services: no ``..``, not absolute)
InnerPath = Annotated[str, Query(max_length=1024)]
PageNumber = Annotated[int, Query(ge=1, le=1_000_000)]


def job_key(rg: ResourceGroup, ws: WorkspaceName, exp: ExperimentName, job: JobName) -> JobKey:
    return JobKey(rg, ws, exp, job)


Job = Annotated[JobKey, Depends(job_key)]


def file_parts(path: str) -> tuple[str, str]:
    """``a/b/c.txt`` → (``a/b``, ``c.txt``): a file's folder and name in an output directory,
    after the checks every path goes through (``SpecError`` for ``..``, absolute paths...)."""
    cleaned = clean_path(path, field="path", allow_root=False)
    folder, _, name = cleaned.rpartition("/")
    return folder, name

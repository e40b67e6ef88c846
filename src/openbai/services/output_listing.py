"""One level of a job's output folder, listed from its storage backend.

Kept apart from ``services/files.py`` (which finds the folder through the ORM) so that ``bai job
file list`` can list a folder found by ``services/quick_reads.py`` without loading SQLAlchemy:
both list through :func:`list_folder`, so both answer the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from openbai.errors import NotFoundError
from openbai.scheduling.locations import VolumeLocation
from openbai.storage.base import FileInfo, StorageBackend, blob_path


@dataclass(frozen=True)
class OutputFile:
    name: str
    is_directory: bool
    size: int | None
    modified: datetime | None
    #: where the bytes can be fetched directly, when the storage has such an address
    url: str | None = None


def _name_in(folder: str, entry: FileInfo) -> str:
    """An entry's name relative to the folder listed: its base name, or, for a blob in a
    folder with an empty name (``x//y.txt`` listed in ``x``), ``/y.txt``."""
    prefix = f"{folder}/" if folder else ""
    if prefix and entry.path.startswith(prefix + "/"):
        return entry.path[len(prefix) :]
    return entry.name


def list_folder(
    backend: StorageBackend, location: VolumeLocation, path: str, directory_id: str
) -> list[OutputFile]:
    """Files and folders at ``path`` inside output directory ``directory_id`` (at
    ``location``), folders first; ``path`` may not climb out of it."""
    sub = blob_path(path, field="directory")
    base = location.join(sub)
    try:
        entries = list(backend.list_dir(base.volume, base.path))
    except NotFoundError:
        if sub:
            raise NotFoundError(
                f"directory {sub!r} does not exist in output directory {directory_id}",
                target="directory",
            ) from None
        return []  # the job has not written anything yet
    files = []
    for entry in sorted(entries, key=lambda e: (not e.is_dir, e.name)):
        local = None if entry.is_dir else backend.local_path(base.volume, entry.path)
        files.append(
            OutputFile(
                name=_name_in(base.path, entry),
                is_directory=entry.is_dir,
                size=None if entry.is_dir else entry.size,
                modified=None if entry.is_dir else entry.modified,
                url=local.as_uri() if local is not None else None,
            )
        )
    return files

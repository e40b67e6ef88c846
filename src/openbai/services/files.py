"""A job's output files, read through storage (not through a node), so they can be listed
and followed while the job runs and long after its nodes are gone."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from openbai.errors import NotFoundError, SpecError
from openbai.installation import App
from openbai.services import accounts
from openbai.services.jobs import get_job, location_of
from openbai.services.output_listing import OutputFile as OutputFile
from openbai.services.output_listing import list_folder
from openbai.storage.base import FileInfo, blob_path
from openbai.storage.follow import follow
from openbai.vocabulary import FINAL_STATES


def _file_path(directory: str, name: str) -> str:
    """``directory/name`` inside an output directory; neither part may climb out of it.

    A name may start with ``/`` inside a directory: it was listed in a folder with an empty
    name (``/y.txt`` in ``x`` is the blob ``x//y.txt``)."""
    folder = blob_path(directory, field="directory")
    rest = name.lstrip("/")
    if not folder or rest == name:
        return "/".join(p for p in (folder, blob_path(name, field="file", allow_root=False)) if p)
    empties = "/" * (len(name) - len(rest))
    return f"{folder}/{empties}{blob_path(rest, field='file', allow_root=False)}"


def list_output_files(
    app: App,
    rg: str,
    ws: str,
    exp: str,
    job: str,
    *,
    directory_id: str = "stdouterr",
    path: str = "",
) -> list[OutputFile]:
    """One level of the output directory (files and folders), like listOutputFiles."""
    location, _ = location_of(app, rg, ws, exp, job, directory_id)
    backend = accounts.backend(app, location.account, location.volume_kind)
    return list_folder(backend, location, path, directory_id)


def output_file_location(
    app: App,
    rg: str,
    ws: str,
    exp: str,
    job: str,
    name: str,
    *,
    directory_id: str = "stdouterr",
    path: str = "",
) -> tuple[str, str, str]:
    """(account, volume, path in volume) of one output file, checked to stay inside the folder."""
    location, _ = location_of(app, rg, ws, exp, job, directory_id)
    rel = _file_path(path, name)
    target = location.join(rel)
    return target.account, target.volume, target.path


def follow_output_file(
    app: App,
    rg: str,
    ws: str,
    exp: str,
    job: str,
    name: str,
    *,
    directory_id: str = "stdouterr",
    path: str = "",
    offset: int = 0,
    poll_interval: float = 0.05,
    stop: Callable[[], bool] | None = None,
) -> Iterator[bytes]:
    """The bytes of an output file as the job writes them; ends when the job has ended and
    every byte was returned, or once ``stop()`` is true and the bytes written so far were
    returned (a reader that went away)."""
    location, _ = location_of(app, rg, ws, exp, job, directory_id)
    rel = _file_path(path, name)
    target = location.join(rel)
    backend = accounts.backend(app, location.account, location.volume_kind)

    def is_finished() -> bool:
        if stop is not None and stop():
            return True
        app.keep_dispatcher()  # the job ends only if a dispatcher records it
        return get_job(app, rg, ws, exp, job).execution_state in FINAL_STATES

    return follow(
        backend,
        target.volume,
        target.path,
        offset=offset,
        is_finished=is_finished,
        poll_interval=poll_interval,
    )


def check_output_file(
    app: App,
    rg: str,
    ws: str,
    exp: str,
    job: str,
    name: str,
    *,
    directory_id: str = "stdouterr",
    path: str = "",
) -> None:
    """Fail before following a file that can never be read: a folder (``SpecError``), one
    storage refuses (a symlink), or one missing once the job has ended (``NotFoundError``);
    a file a running job has not written yet is fine: following waits for it."""
    try:
        read_output_file(app, rg, ws, exp, job, name, directory_id=directory_id, path=path, limit=0)
    except NotFoundError:
        if get_job(app, rg, ws, exp, job).execution_state in FINAL_STATES:
            raise


#: bytes read from storage at once by :func:`read_output_file`
READ_CHUNK = 1024 * 1024


def read_output_file(
    app: App,
    rg: str,
    ws: str,
    exp: str,
    job: str,
    name: str,
    *,
    directory_id: str = "stdouterr",
    path: str = "",
    limit: int | None = None,
) -> tuple[FileInfo, Iterator[bytes]]:
    """An output file's entry and its bytes (the first ``limit`` of them), read in chunks as
    the iterator is consumed; ``SpecError`` for a directory.

    The file is opened once, here: the bytes are those of the file this entry describes,
    whole, even when the job replaces or deletes it while they are sent.
    """
    location, _ = location_of(app, rg, ws, exp, job, directory_id)
    rel = _file_path(path, name)
    target = location.join(rel)
    backend = accounts.backend(app, location.account, location.volume_kind)
    reader = backend.open_file(target.volume, target.path)
    if reader.info.is_dir:
        reader.close()
        raise SpecError(f"{rel} is a directory", target="file")
    end = reader.info.size if limit is None else min(reader.info.size, limit)
    if end == 0:
        reader.close()
        return reader.info, iter(())
    return reader.info, reader.stream(0, end, READ_CHUNK)

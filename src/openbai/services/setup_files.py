"""A cluster's setup-task output files (``az batchai cluster file list``).

The setup task writes ``stdout-<node>.txt`` and ``stderr-<node>.txt`` under
``<stdOutErrPathPrefix>/<stdOutErrPathSuffix>`` on each node. As with a job's output, the
prefix is matched against the cluster's mounted volumes, and the files are read through
storage; a prefix on no mounted volume cannot be listed (as in az).
"""

from __future__ import annotations

from openbai.errors import ConflictError, NotFoundError
from openbai.installation import App
from openbai.scheduling.locations import VolumeLocation, locate, setup_task_suffix
from openbai.scheduling.volumes import mounted_volumes
from openbai.services import accounts
from openbai.services.clusters import cluster_row
from openbai.services.files import OutputFile
from openbai.storage.base import clean_path
from openbai.store.specs import cluster_properties

PREFIX_FIELD = "properties.nodeSetup.setupTask.stdOutErrPathPrefix"


def setup_task_location(app: App, rg: str, ws: str, name: str) -> VolumeLocation | None:
    """Where the setup task's output lies in storage; None when the cluster has no task."""
    with app.db.reading() as s:
        row = cluster_row(s, rg, ws, name)
        props = cluster_properties(row)
        suffix = setup_task_suffix(
            app.settings.subscription_id,
            row.workspace.resource_group,
            row.workspace.name,
            row.name,
            row.uid,
        )
    task = props.node_setup.setup_task if props.node_setup else None
    if task is None or props.node_setup is None:
        return None
    mounted = mounted_volumes(
        props.node_setup.mount_volumes,
        root="AZ_BATCHAI_MOUNT_ROOT",
        field="properties.nodeSetup.mountVolumes",
    )
    location = locate(task.std_out_err_path_prefix, mounted)
    if location is None:
        raise ConflictError(
            f"the setup task of cluster {name} writes its output to"
            f" {task.std_out_err_path_prefix}, which is on no volume mounted on the cluster;"
            " only files on a mounted file share or blob container can be listed",
            code="SetupTaskOutputNotOnMount",
            target=PREFIX_FIELD,
        )
    return location.join(suffix)


def list_setup_task_files(
    app: App, rg: str, ws: str, name: str, *, path: str = ""
) -> tuple[VolumeLocation | None, list[OutputFile]]:
    """One level of the setup task's output folder (``path`` below it), and where it is; a
    bad ``path`` is an error naming ``directory``, as listing a job's is."""
    location = setup_task_location(app, rg, ws, name)
    if location is None:
        return None, []
    sub = clean_path(path, field="directory")
    base = location.join(sub)
    backend = accounts.backend(app, location.account, location.volume_kind)
    try:
        entries = list(backend.list_dir(base.volume, base.path))
    except NotFoundError:
        return base, []  # no node has run the setup task yet
    files = []
    for entry in sorted(entries, key=lambda e: (not e.is_dir, e.name)):
        local = None if entry.is_dir else backend.local_path(base.volume, entry.path)
        files.append(
            OutputFile(
                name=entry.name,
                is_directory=entry.is_dir,
                size=None if entry.is_dir else entry.size,
                modified=None if entry.is_dir else entry.modified,
                url=local.as_uri() if local is not None else None,
            )
        )
    return base, files

"""``bai storage``: accounts, blob containers, file shares, and moving files in and out.

Names follow ``az storage`` with ``--account NAME`` for the account:
``bai storage container create --account acct -n data``,
``bai storage blob upload-batch --account acct -d data -s ./mnist``.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from openbai.cli.common import client, confirm, group_option, handle_errors, yes_option
from openbai.cli.output import emit, output_options, silent_output_options
from openbai.errors import NotFoundError, SpecError
from openbai.storage.base import VolumeKind, blob_path
from openbai.storage.names import check_volume_name

if TYPE_CHECKING:  # the transfer code and rich load only for upload-batch/download-batch
    from openbai.storage.transfer import ProgressCallback, TransferReport

ACCOUNT_COLUMNS = [
    ("Name", "name"),
    ("Kind", "kind"),
    ("Resource Group", "resourceGroup"),
    ("Created", "creationTime"),
]
VOLUME_COLUMNS = [("Name", "name"), ("Kind", "kind")]
ENTRY_COLUMNS = [
    ("Name", "name"),
    ("Type", "type"),
    ("Size", "contentLength"),
    ("Modified", "lastModified"),
]


def account_option(f: Any) -> Any:
    return click.option(
        "--account", "--account-name", "account", required=True, help="Name of the storage account."
    )(f)


@click.group("storage")
def storage_group() -> None:
    """Storage accounts with blob containers and file shares."""


@storage_group.group("account")
def account_group() -> None:
    """Storage accounts: embedded (a directory tree here) or Azure."""


@account_group.command("create")
@click.option(
    "-n", "--name", required=True, help="Account name: 3-24 lowercase letters and digits."
)
@click.option("--kind", type=click.Choice(["local", "azure"]), default="local", show_default=True)
@click.option("--connection-string", default=None, help="Azure: the account's connection string.")
@click.option(
    "--account-name",
    "azure_account_name",
    default=None,
    help="Azure: the account's name in Azure, if different.",
)
@click.option("--account-key", default=None, help="Azure: the account key.")
@click.option("--blob-endpoint", default=None, help="Azure: the blob endpoint URL.")
@click.option(
    "--file-endpoint",
    default=None,
    help="Azure: the file endpoint: https://ACCOUNT.file.core.windows.net, or host[:port] for SMB.",
)
@click.option(
    "--samba-config",
    default=None,
    help="Shares on a local Samba stand-in: its smb.conf, through which shares are created.",
)
@group_option
@output_options
@handle_errors
def account_create(
    name: str,
    kind: str,
    connection_string: str | None,
    azure_account_name: str | None,
    account_key: str | None,
    blob_endpoint: str | None,
    file_endpoint: str | None,
    samba_config: str | None,
    resource_group_name: str | None,
    output: str,
    query: str | None,
) -> None:
    """Create (or, for Azure, register) a storage account."""
    options = {
        k: v
        for k, v in {
            "connection_string": connection_string,
            "account_name": azure_account_name,
            "account_key": account_key,
            "blob_endpoint": blob_endpoint,
            "file_endpoint": file_endpoint,
            "samba_config": samba_config and str(Path(samba_config).resolve()),
        }.items()
        if v
    }
    emit(
        client().create_account(
            name, kind=kind, resource_group=resource_group_name, options=options
        ),
        output=output,
        query=query,
        columns=ACCOUNT_COLUMNS,
    )


def _account_in(name: str, resource_group_name: str | None) -> dict[str, Any]:
    """The account ``name``; with ``-g``, only if it is in that resource group (as on Azure,
    where account names are global but ``az storage account show/delete`` take ``-g``)."""
    account: dict[str, Any] = client().get_account(name)
    if resource_group_name and account.get("resourceGroup") != resource_group_name:
        raise NotFoundError(
            f"storage account {name} is not in resource group {resource_group_name}"
            f" (it is in {account.get('resourceGroup')})"
        )
    return account


@account_group.command("show")
@click.option("-n", "--name", required=True)
@group_option
@output_options
@handle_errors
def account_show(
    name: str, resource_group_name: str | None, output: str, query: str | None
) -> None:
    """Show a storage account (keys are never shown)."""
    emit(
        _account_in(name, resource_group_name), output=output, query=query, columns=ACCOUNT_COLUMNS
    )


@account_group.command("list")
@group_option
@output_options
@handle_errors
def account_list(resource_group_name: str | None, output: str, query: str | None) -> None:
    """List storage accounts (of every resource group, or of -g's)."""
    accounts = [
        a
        for a in client().list_accounts()
        if not resource_group_name or a.get("resourceGroup") == resource_group_name
    ]
    emit(accounts, output=output, query=query, columns=ACCOUNT_COLUMNS)


@account_group.command("delete")
@click.option("-n", "--name", required=True)
@group_option
@yes_option
@silent_output_options
@handle_errors
def account_delete(name: str, resource_group_name: str | None, yes: bool) -> None:
    """Delete a storage account (an embedded account's data goes with it)."""
    if resource_group_name:
        _account_in(name, resource_group_name)
    confirm(yes, f"Delete storage account {name}? Data of an embedded account is deleted.")
    client().delete_account(name)


def _volume_group(kind: VolumeKind, group_name: str, noun: str) -> click.Group:
    group = click.Group(group_name, help=f"{noun.capitalize()}s of a storage account.")

    @group.command("create", help=f"Create a {noun}.")
    @account_option
    @click.option("-n", "--name", required=True)
    @output_options
    @handle_errors
    def create(account: str, name: str, output: str, query: str | None) -> None:
        emit(
            client().create_volume(account, kind, name),
            output=output,
            query=query,
            columns=VOLUME_COLUMNS,
        )

    @group.command("list", help=f"List the {noun}s of an account.")
    @account_option
    @output_options
    @handle_errors
    def list_(account: str, output: str, query: str | None) -> None:
        volumes = client().storage(account, kind).list_volumes()
        emit(
            [{"name": v.name, "kind": v.kind.value, "account": account} for v in volumes],
            output=output,
            query=query,
            columns=VOLUME_COLUMNS,
        )

    @group.command("show", help=f"Show a {noun}.")
    @account_option
    @click.option("-n", "--name", required=True)
    @output_options
    @handle_errors
    def show(account: str, name: str, output: str, query: str | None) -> None:
        backend = client().storage(account, kind)
        if not backend.volume_exists(name):
            raise NotFoundError(f"{noun} {name!r} does not exist in account {account!r}")
        emit(
            {"name": name, "kind": kind.value, "account": account},
            output=output,
            query=query,
            columns=VOLUME_COLUMNS,
        )

    @group.command("delete", help=f"Delete a {noun} and everything in it.")
    @account_option
    @click.option("-n", "--name", required=True)
    @yes_option
    @silent_output_options
    @handle_errors
    def delete(account: str, name: str, yes: bool) -> None:
        confirm(yes, f"Delete {noun} {name} and all its files?")
        client().storage(account, kind).delete_volume(name)

    return group


storage_group.add_command(_volume_group(VolumeKind.BLOB, "container", "blob container"))
storage_group.add_command(_volume_group(VolumeKind.FILE, "share", "file share"))


def _files_group(
    kind: VolumeKind, group_name: str, volume_flags: tuple[str, str], noun: str
) -> click.Group:
    group = click.Group(group_name, help=f"Files in {noun}s: list, upload and download trees.")

    @group.command(
        "upload-batch",
        help=f"Upload a directory to a {noun} (parallel; unchanged files are skipped).",
    )
    @account_option
    @click.option("-d", "--destination", required=True, help=f"The {noun}.")
    @click.option(
        "-s",
        "--source",
        required=True,
        type=click.Path(exists=True, file_okay=False),
        help="Local directory.",
    )
    @click.option("--destination-path", default="", help=f"Directory inside the {noun}.")
    @click.option("--pattern", default=None, help="Only files matching this glob (e.g. '*.png').")
    @click.option(
        "--max-connections",
        default=16,
        show_default=True,
        type=click.IntRange(1, 64),
        help="Files in flight at once (each on its own connection).",
    )
    @click.option(
        "--validate-content",
        is_flag=True,
        help="Hash big files too, as az's --validate-content: each block goes with its MD5 "
        "for the store to check and the file's MD5 is stored (else a re-run compares their "
        "size and mtime).",
    )
    @dryrun_option
    @click.option("--no-progress", is_flag=True)
    @output_options
    @handle_errors
    def upload_batch(
        account: str,
        destination: str,
        source: str,
        destination_path: str,
        pattern: str | None,
        max_connections: int,
        validate_content: bool,
        dryrun: bool,
        no_progress: bool,
        output: str,
        query: str | None,
    ) -> None:
        from openbai.storage.transfer import upload_tree

        check_volume_name(destination, field="--destination")
        backend = client().storage(account, kind)
        backend.validate_content = validate_content
        path = blob_path(destination_path, field="--destination-path")
        with _progress(f"upload to {destination}", no_progress or dryrun) as on_event:
            report = upload_tree(
                backend,
                destination,
                Path(source),
                path,
                pattern=pattern,
                workers=max_connections,
                on_progress=on_event,
                dry_run=dryrun,
            )
        if dryrun:
            _dry_run(report, "upload", source, _in_volume(destination, path), output, query)
        else:
            _finish(report, output, query)

    @group.command(
        "download-batch", help=f"Download a {noun} (or a directory of it) to a local directory."
    )
    @account_option
    @click.option("-s", "--source", required=True, help=f"The {noun}.")
    @click.option(
        "-d",
        "--destination",
        required=True,
        type=click.Path(file_okay=False),
        help="Local directory.",
    )
    @click.option("--source-path", default="", help=f"Directory inside the {noun}.")
    @click.option("--pattern", default=None)
    @click.option(
        "--max-connections",
        default=16,
        show_default=True,
        type=click.IntRange(1, 64),
        help="Files in flight at once (each on its own connection).",
    )
    @dryrun_option
    @click.option("--no-progress", is_flag=True)
    @output_options
    @handle_errors
    def download_batch(
        account: str,
        source: str,
        destination: str,
        source_path: str,
        pattern: str | None,
        max_connections: int,
        dryrun: bool,
        no_progress: bool,
        output: str,
        query: str | None,
    ) -> None:
        from openbai.storage.transfer import download_tree

        check_volume_name(source, field="--source")
        backend = client().storage(account, kind)
        if not dryrun:  # a dry run leaves the local side as it is: no folder made
            Path(destination).mkdir(parents=True, exist_ok=True)
        path = blob_path(source_path, field="--source-path")
        with _progress(f"download from {source}", no_progress or dryrun) as on_event:
            report = download_tree(
                backend,
                source,
                path,
                Path(destination),
                pattern=pattern,
                workers=max_connections,
                on_progress=on_event,
                dry_run=dryrun,
            )
        if dryrun:
            _dry_run(report, "download", _in_volume(source, path), destination, output, query)
        else:
            _finish(report, output, query)

    @group.command("download", help=f"Download one file of a {noun} to a local file.")
    @account_option
    @click.option(*volume_flags, "volume", required=True, help=f"The {noun}.")
    @click.option("-n", "--name", "-p", "--path", "name", required=True, help="The file in it.")
    @click.option(
        "-f", "--file", "--dest", "target", required=True, type=click.Path(dir_okay=False),
        help="Local file to write (replaced whole, never left half-written).",
    )  # fmt: skip
    @output_options
    @handle_errors
    def download(
        account: str, volume: str, name: str, target: str, output: str, query: str | None
    ) -> None:
        backend = client().storage(account, kind)
        path = blob_path(name, field="--name", allow_root=False)
        info = backend.stat(volume, path)
        if info.is_dir:
            raise SpecError(f"--name: {name!r} is a directory (download-batch takes those)",
                            target="--name")  # fmt: skip
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        backend.download(volume, path, Path(target))
        from openbai.spec.times import iso

        row = {"name": info.path, "contentLength": info.size, "lastModified": iso(info.modified)}
        emit(row, output=output, query=query)

    @group.command("list", help=f"List files of a {noun}.")
    @account_option
    @click.option(*volume_flags, "volume", required=True, help=f"The {noun}.")
    @click.option("-p", "--path", "--prefix", "path", default="", help="Directory inside it.")
    @click.option("--recursive", is_flag=True, help="Every file below, not one level.")
    @output_options
    @handle_errors
    def list_(
        account: str, volume: str, path: str, recursive: bool, output: str, query: str | None
    ) -> None:
        backend = client().storage(account, kind)
        if not backend.volume_exists(volume):
            raise NotFoundError(f"{noun} {volume!r} does not exist in account {account!r}")
        entries = backend.list_dir(volume, blob_path(path, field="--path"), recursive=recursive)
        from openbai.spec.times import iso  # the store's models: only when needed

        rows = [
            {
                "name": e.path,
                "type": "dir" if e.is_dir else "file",
                "contentLength": None if e.is_dir else e.size,
                "lastModified": iso(e.modified),
            }
            for e in entries
        ]
        emit(rows, output=output, query=query, columns=ENTRY_COLUMNS)

    return group


def _progress(
    description: str, no_progress: bool
) -> contextlib.AbstractContextManager[ProgressCallback | None]:
    """The progress bar's callback on a terminal; else None, and rich is not even imported."""
    if no_progress or not sys.stderr.isatty():
        return contextlib.nullcontext(None)
    from openbai.cli.progress import transfer_progress

    return transfer_progress(description, enabled=True)


def dryrun_option(f: Any) -> Any:
    return click.option(
        "--dryrun",
        is_flag=True,
        help="Show what would be transferred (and which files are unchanged, so skipped) "
        "instead of transferring: nothing is written on either side.",
    )(f)


def _in_volume(volume: str, path: str) -> str:
    return f"{volume}/{path}" if path else volume


#: ``--dryrun -o table/tsv`` (no --query) prints the files: one summary row would say little
PLANNED_COLUMNS = [
    ("Source", "source"),
    ("Destination", "destination"),
    ("Size", "size"),
    ("Action", "action"),
]


def _dry_run(
    report: TransferReport, action: str, source: str, destination: str, output: str,
    query: str | None,
) -> None:  # fmt: skip
    """Print a dry run's plan; exit 1 if a file could not even be read, as a real run does.

    Each file's ``source`` and ``destination`` are a local path and a path inside the
    volume (as ``blob list`` names it); ``action`` is ``upload`` or ``download``, or
    ``skip (unchanged)`` for a file a real run would find already in place."""
    files = [
        {"source": f.source, "destination": f.destination, "size": f.size,
         "action": "skip (unchanged)" if f.unchanged else action}
        for f in report.planned
    ]  # fmt: skip
    plan = {
        "dryrun": True,
        "source": source,
        "destination": destination,
        "filesTotal": report.files_total,
        "filesToTransfer": report.files_done,
        "filesSkipped": report.files_skipped,
        "filesFailed": report.files_failed,
        "bytesToTransfer": report.bytes_done,
        "files": files,
        "failures": [{"path": f.path, "error": f.error.message} for f in report.failures],
    }
    if output in ("table", "tsv") and not query:
        emit(files, output=output, query=None, columns=PLANNED_COLUMNS)
    else:
        emit(plan, output=output, query=query)
    if not report.is_complete:
        sys.exit(1)


def _finish(report: TransferReport, output: str, query: str | None) -> None:
    emit(
        {
            "filesTotal": report.files_total,
            "filesTransferred": report.files_done,
            "filesSkipped": report.files_skipped,
            "filesFailed": report.files_failed,
            "bytesTotal": report.bytes_total,
            "bytesTransferred": report.bytes_done,
            "failures": [{"path": f.path, "error": f.error.message} for f in report.failures],
        },
        output=output,
        query=query,
    )
    if not report.is_complete:
        sys.exit(1)


# az's flags: `az storage blob list -c/--container-name`, `az storage file list -s/--share-name`
storage_group.add_command(
    _files_group(VolumeKind.BLOB, "blob", ("-c", "--container-name"), "container")
)
storage_group.add_command(_files_group(VolumeKind.FILE, "file", ("-s", "--share-name"), "share"))

"""A rich progress bar for tree transfers (upload-batch / download-batch), on stderr."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from openbai.storage.transfer import TransferEvent

_SHOW_INTERVAL = 0.1


@contextmanager
def transfer_progress(
    description: str, *, enabled: bool
) -> Iterator[Callable[[TransferEvent], None]]:
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("{task.description}", markup=False),  # it may name the user's folders
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[files]}"),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    )
    task = progress.add_task(description, total=None, files="")
    counts = {"total": 0, "done": 0, "skipped": 0, "failed": 0, "bytes": 0}
    shown = [0.0]  # when the bar was last updated

    def show() -> None:
        files = f"{counts['done'] + counts['skipped']}/{counts['total']} files"
        if counts["skipped"]:
            files += f" ({counts['skipped']} unchanged)"
        progress.update(task, completed=counts["bytes"], files=files)
        shown[0] = time.monotonic()

    def on_event(event: TransferEvent) -> None:
        # counted here, shown at most every 0.1 s: rich's update per file of a 10,000-file
        # tree costs more CPU than the bar is worth (rich redraws at 10 Hz anyway)
        if event.kind == "planned":
            counts["total"] = event.files_total
            progress.update(task, total=event.bytes_total)
        elif event.kind == "bytes":
            counts["bytes"] += event.nbytes
        elif event.kind == "file_done":
            counts["done"] += 1
        elif event.kind == "file_skipped":
            counts["skipped"] += 1
        elif event.kind == "file_failed":
            counts["failed"] += 1
            # a name is the user's, never markup or emoji codes ("[/red]", ":x:")
            console.print(Text.assemble(("failed", "red"), f" {event.path}: {event.error}"))
        if event.kind != "bytes" and time.monotonic() - shown[0] >= _SHOW_INTERVAL:
            show()

    with progress:
        try:
            yield on_event
        finally:
            show()

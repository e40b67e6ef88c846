"""The open files of a mount: what each FUSE file handle number stands for.

A handle is a directory being listed, a file read from storage (through its
:class:`ReadAhead`), or a file being written here (its :class:`WrittenFile`, shared by every
handle open on it: a reader of a file being written reads it back through its writer).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import mfusepy

from openbai.mounts.readahead import ReadAhead
from openbai.mounts.written_files import WrittenFile


def caller_pid() -> int:
    """The process that made the FUSE request being served (0 when unknown)."""
    try:
        return int(mfusepy.fuse_get_context()[2])
    except (OSError, ValueError, AttributeError):
        return 0


@dataclass(eq=False)
class Handle:
    key: str
    file: WrittenFile | None = None
    reader: ReadAhead | None = None
    #: the process that opened a file written here: only its close publishes the file at
    #: once (0 for a reader, whose close does nothing)
    pid: int = field(default_factory=caller_pid)


class HandleTable:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handles: dict[int, Handle] = {}
        self._next = 1

    def add(self, handle: Handle) -> int:
        with self._lock:
            fh = self._next
            self._next += 1
            self._handles[fh] = handle
            if handle.file is not None:
                handle.file.refs += 1
            return fh

    def get(self, fh: int | None) -> Handle | None:
        return self._handles.get(fh) if fh is not None else None

    def __getitem__(self, fh: int) -> Handle:
        return self._handles[fh]

    def pop(self, fh: int) -> Handle | None:
        with self._lock:
            return self._handles.pop(fh, None)

    def rename(self, src: str, dst: str) -> None:
        """Handles open on ``src`` now stand for ``dst``."""
        with self._lock:
            for handle in self._handles.values():
                if handle.key == src:
                    handle.key = dst

"""The job's execution log (``execution.log`` in the stdouterr folder), as Batch AI's agent
wrote it: one timestamped line per step. Lines written before the stdouterr folder exists are
kept and written first once it does; every line also goes to the run directory's node log."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TextIO


class ExecutionLog:
    def __init__(self, node_log: Path):
        self._lines: list[str] = []
        self._files: list[TextIO] = [open(node_log, "a", buffering=1)]

    def __call__(self, message: str) -> None:
        line = f"{time.strftime('%Y/%m/%d %H:%M:%S', time.gmtime())} {message}\n"
        self._lines.append(line)
        for f in self._files:
            f.write(line)

    def attach(self, path: Path) -> None:
        """Also write to ``path`` from now on, starting with everything logged so far."""
        f = open(path, "a", buffering=1)
        f.writelines(self._lines)
        self._files.append(f)

    def close(self) -> None:
        for f in self._files:
            f.close()
        self._files = []

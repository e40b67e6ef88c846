"""The job's execution log (``execution.log`` in the stdouterr folder), as Batch AI's agent
wrote it: one timestamped line per step. Lines written before the stdouterr folder exists are
kept and written first once it does; every line also goes to the run directory's node log.

A line that cannot be written (a full disk) never stops the runner: the first such error is
kept in :attr:`ExecutionLog.failure` for the job's outcome, and the line stays in memory.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from openbai.files import private_opener


class ExecutionLog:
    def __init__(self, node_log: Path, secrets: Iterable[str] = ()):
        #: the job's secret values, never written: a command line, a variable or an error
        #: that holds one shows ``***`` in its place (the longest first)
        self._secrets = sorted({v for v in secrets if v}, key=len, reverse=True)
        self._lines: list[str] = []
        # the run directory's copy is the installation's own (private); the stdouterr
        # folder's is the job's output in its volume, as stdout.txt is (see attach)
        self._files: list[TextIO] = [open(node_log, "a", buffering=1, opener=private_opener)]
        #: the first write that failed (ENOSPC...), with the file's name
        self.failure: OSError | None = None

    def __call__(self, message: str) -> None:
        for secret in self._secrets:
            message = message.replace(secret, "***")
        line = f"{time.strftime('%Y/%m/%d %H:%M:%S', time.gmtime())} {message}\n"
        self._lines.append(line)
        for f in self._files:
            self._write(f, [line])

    def _write(self, f: TextIO, lines: list[str]) -> None:
        try:
            f.writelines(lines)
        except OSError as exc:
            if self.failure is None:
                exc.filename = exc.filename or f.name
                self.failure = exc

    def attach(self, path: Path, fd: int | None = None) -> None:
        """Also write to ``path`` from now on (``fd``: the file opened for appending, which
        the log then owns), starting with everything logged so far."""
        f = open(path, "a", buffering=1) if fd is None else open(fd, "a", buffering=1)
        self._write(f, self._lines)
        self._files.append(f)

    def close(self) -> None:
        for f in self._files:
            try:
                f.close()
            except OSError as exc:  # the last buffered bytes did not fit
                self.failure = self.failure or exc
        self._files = []

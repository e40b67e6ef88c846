"""The installation, opened once per process: settings, database, secrets and executors, and
the way to wake its dispatcher.

The dispatcher itself lives above (``scheduling/``); from here it is reached only through its
socket or by starting ``python -m openbai.scheduling.daemon``, so nothing below the scheduler
imports it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from openbai.files import private_opener
from openbai.settings import Settings
from openbai.vocabulary import ACTIVE_STATES

if TYPE_CHECKING:  # the store and executors load when an App opens, not for the socket helpers
    from openbai.executors.base import Executor
    from openbai.store.database import Database
    from openbai.store.secrets import Sealer

#: seconds between two looks for a dispatcher from the same process (reads poll often)
KEEP_INTERVAL = 1.0


@dataclass
class App:
    settings: Settings
    db: Database
    sealer: Sealer
    #: called when a job's state may have changed (the dispatcher's wake-up)
    on_change: Callable[[], None] | None = None
    _executors: dict[str, Executor] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _kept_at: float | None = None

    @classmethod
    def open(cls, settings: Settings) -> App:
        from openbai.store.database import open_database
        from openbai.store.secrets import Sealer, seal_rows_at_rest

        settings.home.chmod(0o700)  # keys, database, run directories: the installation's alone
        sealer = Sealer(settings.home / "secret.key")
        seal_rows_at_rest(settings.db_url, sealer)  # job and cluster secrets, sealed in the rows
        return cls(settings, open_database(settings.db_url), sealer)

    def executor(self, name: str) -> Executor:
        from openbai.executors.registry import make_executor

        with self._lock:
            if name not in self._executors:
                self._executors[name] = make_executor(
                    name,
                    nodes_root=self.settings.nodes_root,
                    state_root=self.settings.home,
                    on_exit=self.changed,
                    gpus=self.settings.gpus,
                )
            return self._executors[name]

    def changed(self) -> None:
        """Tell the dispatcher (in this process, or the background one) to look again."""
        if self.on_change is not None:
            self.on_change()
            return
        ensure_dispatcher(self.settings)

    def keep_dispatcher(self) -> None:
        """Make sure a dispatcher runs while jobs are queued or running (at most once a second).

        Called by every read as well as every change: a dispatcher killed with ``kill -9``
        is otherwise noticed only by the next command that queues or deletes something, and
        until then ended jobs show ``running`` and waits on them never end. Costs a datagram
        (no wake-up) while one runs; an indexed look for active jobs when none answers.
        """
        if self.on_change is not None:  # the dispatcher runs in this process (bai serve)
            return
        now = time.monotonic()
        with self._lock:
            if self._kept_at is not None and now - self._kept_at < KEEP_INTERVAL:
                return
            self._kept_at = now
        if dispatcher_answers(self.settings) or not self.has_active_jobs():
            return
        ensure_dispatcher(self.settings)

    def has_active_jobs(self) -> bool:
        """Whether any job is queued or running (the job queue's index answers it)."""
        from sqlalchemy import select

        from openbai.store.models import Job

        with self.db.reading() as s:
            found = s.scalar(select(Job.id).where(Job.execution_state.in_(ACTIVE_STATES)).limit(1))
        return found is not None

    def close(self) -> None:
        self.db.dispose()


#: datagrams to the dispatcher's socket: look again now / only see whether one listens
WAKE = b"!"
PING = b"?"


def _send(settings: Settings, message: bytes) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(message, str(settings.daemon_socket))
        return True
    except OSError:  # no socket, or nobody bound to it (a killed dispatcher leaves the file)
        return False


def poke_dispatcher(settings: Settings) -> bool:
    """Wake the background dispatcher through its socket; False if none listens."""
    return _send(settings, WAKE)


def dispatcher_answers(settings: Settings) -> bool:
    """Whether a dispatcher listens on the socket (it is not woken)."""
    return _send(settings, PING)


#: seconds a dispatcher just started is given to bind its socket before another is started
START_GRACE = 10.0


def ensure_dispatcher(settings: Settings) -> None:
    """Wake the running dispatcher, or start one in the background.

    A dispatcher takes a moment to import and bind its socket; commands that run meanwhile
    (many at once, from scripts) find none answering. The first leaves ``dispatcher.starting``
    and the others rely on it for START_GRACE seconds instead of each starting another.
    """
    if poke_dispatcher(settings) or not _claim_start(settings.home / "dispatcher.starting"):
        return
    # the installation's own log: private from its creation, whatever the umask
    with open(settings.home / "dispatcher.log", "ab", opener=private_opener) as log:
        subprocess.Popen(
            [sys.executable, "-m", "openbai.scheduling.daemon"],
            env={**os.environ, "OPENBAI_HOME": str(settings.home)},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )


def _claim_start(marker: Path) -> bool:
    """True for the one caller that may start a dispatcher now (the marker is its claim)."""
    try:
        if time.time() - marker.stat().st_mtime < START_GRACE:
            return False
        marker.unlink(missing_ok=True)  # a stale claim: its dispatcher never came up
    except FileNotFoundError:
        pass
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:  # another caller claimed it first
        return False
    return True

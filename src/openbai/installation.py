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
from collections.abc import Callable
from dataclasses import dataclass, field

from openbai.executors.base import Executor
from openbai.executors.registry import make_executor
from openbai.settings import Settings
from openbai.store.database import Database, open_database
from openbai.store.secrets import Sealer


@dataclass
class App:
    settings: Settings
    db: Database
    sealer: Sealer
    #: called when a job's state may have changed (the dispatcher's wake-up)
    on_change: Callable[[], None] | None = None
    _executors: dict[str, Executor] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, settings: Settings) -> App:
        return cls(settings, open_database(settings.db_url), Sealer(settings.home / "secret.key"))

    def executor(self, name: str) -> Executor:
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

    def close(self) -> None:
        self.db.dispose()


def poke_dispatcher(settings: Settings) -> bool:
    """Wake the background dispatcher through its socket; False if none listens."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"!", str(settings.daemon_socket))
        return True
    except OSError:
        return False


def ensure_dispatcher(settings: Settings) -> None:
    """Wake the running dispatcher, or start one in the background."""
    if poke_dispatcher(settings):
        return
    with open(settings.home / "dispatcher.log", "ab") as log:
        subprocess.Popen(
            [sys.executable, "-m", "openbai.scheduling.daemon"],
            env={**os.environ, "OPENBAI_HOME": str(settings.home)},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )

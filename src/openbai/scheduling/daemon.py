"""The background dispatcher: ``python -m openbai.scheduling.daemon``.

Started by the CLI when it queues a job and no dispatcher answers; exits when nothing has
been queued or running for a while. Its output goes to ``$OPENBAI_HOME/dispatcher.log``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import logging.handlers
import os
import signal
import sys
import threading
from pathlib import Path

from openbai.files import private_opener
from openbai.installation import App, ensure_dispatcher
from openbai.scheduling.dispatcher import Dispatcher
from openbai.settings import Settings

IDLE_EXIT_SECONDS = 30.0


class _FullDiskProofHandler(logging.FileHandler):
    """Lines go to the log file; a line the file cannot take (its disk is full) goes to
    syslog where there is one (``/dev/log``, the journal under systemd) and to stderr, so a
    full disk never silences the dispatcher, nor kills it."""

    def __init__(self, path: Path):
        super().__init__(path, encoding="utf-8", delay=True)
        self._syslog: logging.Handler | None = None
        if Path("/dev/log").exists():
            self._syslog = logging.handlers.SysLogHandler("/dev/log")
            self._syslog.ident = "openbai-dispatcher: "

    def _open(self) -> io.TextIOWrapper:
        # the installation's own log: private from its creation, whatever the umask
        return open(  # appended to, as FileHandler's default mode (the one used here)
            self.baseFilename,
            "a",
            encoding=self.encoding,
            errors=self.errors,
            opener=private_opener,
        )

    def setFormatter(self, fmt: logging.Formatter | None) -> None:
        super().setFormatter(fmt)
        if self._syslog is not None:
            self._syslog.setFormatter(fmt)

    def handleError(self, record: logging.LogRecord) -> None:
        if self._syslog is not None:
            self._syslog.emit(record)
        with contextlib.suppress(Exception):
            sys.__stderr__.write(self.format(record) + "\n")  # type: ignore[union-attr]
            sys.__stderr__.flush()  # type: ignore[union-attr]


def _log_to(path: Path) -> None:
    """The dispatcher's log lines (logger ``openbai.dispatcher``) go to ``path``."""
    handler = _FullDiskProofHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    logger = logging.getLogger("openbai.dispatcher")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def main() -> int:
    settings = Settings.load()
    _log_to(settings.home / "dispatcher.log")
    app = App.open(settings)
    dispatcher = Dispatcher(app)
    app.on_change = dispatcher.wake
    if not dispatcher.try_acquire():
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        dispatcher.run(
            stop=stop,
            idle_exit=float(os.environ.get("OPENBAI_DISPATCHER_IDLE_EXIT", IDLE_EXIT_SECONDS)),
        )
    finally:
        dispatcher.close()
    # a job queued while this dispatcher was going away must not wait for the next command
    if not stop.is_set() and settings.home.is_dir() and dispatcher.has_work():
        ensure_dispatcher(settings)
    app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

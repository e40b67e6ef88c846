"""The dispatcher of ``bai serve``, on a thread of the server's process."""

from __future__ import annotations

import threading

from openbai.installation import App, poke_dispatcher
from openbai.scheduling.dispatcher import Dispatcher

#: seconds between attempts to become the dispatcher while another one holds the lock
ACQUIRE_INTERVAL = 1.0


class DispatcherThread:
    """The dispatcher of ``bai serve``: runs once it holds the installation's lock.

    While another dispatcher (a background one the CLI started) holds it, wake-ups go to
    that one and the lock is tried again every second.
    """

    def __init__(self, app: App):
        self.app = app
        self.dispatcher = Dispatcher(app)
        self.stop = threading.Event()
        self._holds_lock = threading.Event()
        self._thread = threading.Thread(target=self._run, name="openbai-dispatcher", daemon=True)

    def start(self) -> None:
        self.app.on_change = self.wake
        self._thread.start()

    def wake(self) -> None:
        if self._holds_lock.is_set():
            self.dispatcher.wake()
        else:
            poke_dispatcher(self.app.settings)

    def _run(self) -> None:
        while not self.dispatcher.try_acquire():
            if self.stop.wait(ACQUIRE_INTERVAL):
                return
        self._holds_lock.set()
        try:
            self.dispatcher.run(stop=self.stop)
        finally:
            self.dispatcher.close()

    def close(self, timeout: float = 10.0) -> None:
        self.stop.set()
        self.dispatcher.wake()
        self._thread.join(timeout)

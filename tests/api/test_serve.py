"""``bai serve``: runs the dispatcher in-process (or waits for the lock another one holds)
and shuts down cleanly on SIGTERM and SIGINT."""

from __future__ import annotations

import signal
import time

import pytest

from openbai.scheduling.dispatcher import Dispatcher
from openbai.scheduling.in_server import DispatcherThread

from .support import start_server


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stops_cleanly_on_a_signal(bai, sig):
    server = start_server(bai.home, bai.env)
    assert (bai.home / "dispatcher.sock").exists()  # the in-process dispatcher listens
    server.process.send_signal(sig)
    assert server.process.wait(20) == 0
    assert not (bai.home / "dispatcher.sock").exists()
    assert "Traceback" not in (bai.home / "serve.log").read_text()


def test_dispatcher_takes_over_when_the_other_one_leaves(service):
    other = Dispatcher(service)
    assert other.try_acquire()
    thread = DispatcherThread(service)
    thread.start()
    try:
        time.sleep(0.3)
        assert not thread._holds_lock.is_set()
        service.changed()  # goes to the other dispatcher meanwhile
        other.close()
        deadline = time.monotonic() + 5
        while not thread._holds_lock.is_set():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        service.changed()  # now wakes the in-process one
    finally:
        thread.close()
        # the lock file names this (pytest's) process: the bai fixture would SIGTERM it
        (service.settings.home / "dispatcher.lock").write_text("")
    assert not thread._thread.is_alive()

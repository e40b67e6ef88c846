"""``bai serve``: runs the dispatcher in-process (or waits for the lock another one holds)
and shuts down cleanly on SIGTERM and SIGINT."""

from __future__ import annotations

import signal

import pytest
from conftest import Bai
from polling import wait_until

from openbai.installation import App
from openbai.scheduling.dispatcher import Dispatcher
from openbai.scheduling.in_server import DispatcherThread

from .support import start_server


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stops_cleanly_on_a_signal(bai: Bai, sig: signal.Signals) -> None:
    server = start_server(bai.home, bai.env)
    assert (bai.home / "dispatcher.sock").exists()  # the in-process dispatcher listens
    server.process.send_signal(sig)
    assert server.process.wait(20) == 0
    assert not (bai.home / "dispatcher.sock").exists()
    assert "Traceback" not in (bai.home / "serve.log").read_text()


def test_dispatcher_takes_over_when_the_other_one_leaves(
    service: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = Dispatcher(service)
    assert other.try_acquire()
    thread = DispatcherThread(service)
    tries: list[bool] = []
    acquire = thread.dispatcher.try_acquire

    def counted_acquire() -> bool:
        tries.append(acquire())
        return tries[-1]

    monkeypatch.setattr(thread.dispatcher, "try_acquire", counted_acquire)
    thread.start()
    try:
        wait_until(lambda: tries, "try for the lock")
        assert not any(tries) and not thread._holds_lock.is_set()
        service.changed()  # goes to the other dispatcher meanwhile
        other.close()
        wait_until(thread._holds_lock.is_set, "lock taken after the other dispatcher left")
        service.changed()  # now wakes the in-process one
    finally:
        thread.close()
        # the lock file names this (pytest's) process: the bai fixture would SIGTERM it
        (service.settings.home / "dispatcher.lock").write_text("")
    assert not thread._thread.is_alive()

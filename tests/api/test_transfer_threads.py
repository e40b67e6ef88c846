"""A transfer's source (a followed file, a remote reader) is read and closed on the transfer
threads, also when the client goes away in the middle of it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import anyio

from openbai.http.threads import iterate_transfer


def test_a_source_is_closed_on_a_transfer_thread_when_its_client_goes_away() -> None:
    reading = threading.Event()
    go_on = threading.Event()
    closed_on: list[threading.Thread] = []

    def source() -> Iterator[bytes]:
        try:
            yield b"first"
            reading.set()
            go_on.wait(30)  # a follower waiting for the job to write more
            yield b"more"
        finally:
            closed_on.append(threading.current_thread())

    async def client_goes_away() -> None:
        chunks = iterate_transfer(source())
        async with anyio.create_task_group() as tg:

            async def respond() -> None:
                async for _ in chunks:
                    pass

            tg.start_soon(respond)
            await anyio.to_thread.run_sync(reading.wait, 30)
            tg.cancel_scope.cancel()  # what the server does when the connection drops
            go_on.set()

    anyio.run(client_goes_away)
    assert len(closed_on) == 1
    assert closed_on[0] is not threading.main_thread()

"""``bai serve`` refuses a busy port or an unknown host with a one-line error and an exit
code, before it starts anything."""

from __future__ import annotations

import socket

from conftest import Bai


def test_a_busy_port_is_a_conflict(bai: Bai) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        busy = bai("serve", "--host", "127.0.0.1", "--port", port, expect=4)
    assert busy.stderr == f"ERROR: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    assert "openbai serving" not in busy.stderr


def test_an_unknown_host_is_bad_input(bai: Bai) -> None:
    unknown = bai("serve", "--host", "no-such-host.invalid", "--port", "0", expect=2)
    assert unknown.stderr.startswith("ERROR: --host no-such-host.invalid: ")


def test_connections_are_accepted_with_nagle_off() -> None:
    """Responses and stream chunks go out at once: the accepted connection inherits
    TCP_NODELAY from the listener (asyncio would not set it on this socket)."""
    from openbai.cli.serve import _listen

    with _listen("127.0.0.1", 0) as listener:
        with socket.create_connection(listener.getsockname()):
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0

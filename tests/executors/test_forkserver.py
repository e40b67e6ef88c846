"""The fork server: runners asked for together start together, answered in order, and
every runner's end is reported."""

from __future__ import annotations

import threading
from pathlib import Path

import psutil

from openbai.executors.forkserver import ForkServer


def test_runners_asked_for_together_are_answered_in_order_and_their_ends_reported(
    tmp_path: Path,
) -> None:
    ended: list[int] = []
    all_ended = threading.Event()

    def on_exit(pid: int) -> None:
        ended.append(pid)
        if len(ended) == 3:
            all_ended.set()

    server = ForkServer(on_exit=on_exit)
    try:
        # a runner given no run directory exits at once, after printing its usage
        outputs = [tmp_path / f"node-{k}.out" for k in range(3)]
        started = server.spawn([(["--node", str(k)], str(out)) for k, out in enumerate(outputs)])
        assert len({pid for pid, _ in started}) == 3
        assert all(at > 0 for _, at in started)
        assert all_ended.wait(30)
        assert sorted(ended) == sorted(pid for pid, _ in started)
        assert all("--run-dir" in out.read_text() for out in outputs)
        assert not any(psutil.pid_exists(pid) for pid, _ in started)
        assert server.is_running()
    finally:
        server.close()
    assert not server.is_running()

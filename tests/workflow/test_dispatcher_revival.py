"""A dispatcher killed with ``kill -9`` comes back with the next command of any kind: reads
(``job list``, ``job show``, ``job wait``, ``job file stream``) revive it as well as changes,
so no job shows ``running`` after its end and no wait hangs on a dead dispatcher."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from conftest import Bai
from polling import wait_until

from .conftest import custom_job, storage_dir, write_job

SEG = "jobOutputDirectoryPathSegment"


def _create(bai: Bai, tmp_path: Path, command: str, name: str) -> None:
    job = write_job(tmp_path, custom_job(command), f"{name}.json")
    bai("job", "create", "-w", "ws", "-e", "exp", "-c", "c1", "-n", name, "-f", job)


def _state(bai: Bai, name: str) -> str:
    return str(bai.json("job", "show", "-w", "ws", "-e", "exp", "-n", name)["executionState"])


def _kill_dispatcher(bai: Bai) -> int:
    pid = int((bai.home / "dispatcher.lock").read_text())
    os.kill(pid, signal.SIGKILL)
    return pid


def test_reads_revive_a_killed_dispatcher(recipes: Bai, tmp_path: Path, gates: Path) -> None:
    bai = recipes
    gate = gates / "gate"  # where the sandboxed job sees it
    wait_for_gate = f"while [ ! -e {gate} ]; do sleep 0.05; done"
    _create(bai, tmp_path, f"echo first; {wait_for_gate}", "first")
    _create(bai, tmp_path, f"echo second; {wait_for_gate}", "second")
    _create(bai, tmp_path, "echo third", "third")  # two nodes: queued behind the others
    logs = storage_dir(bai, "acct", "file", "logs")

    def stdout(job: str) -> Path:
        shown = bai.json("job", "show", "-w", "ws", "-e", "exp", "-n", job)
        return logs / str(shown[SEG]) / "stdouterr" / "stdout.txt"

    # both run (their runners write), so the dispatcher to be killed has handed them out
    wait_until(lambda: stdout("first").exists() and stdout("second").exists(), "both stdouts")
    assert _state(bai, "third") == "queued"

    killed = _kill_dispatcher(bai)
    gate.touch()
    # `job wait` alone (no create, no delete) brings a dispatcher back, which records the end
    done = bai("job", "wait", "-w", "ws", "-e", "exp", "-n", "first")
    assert "Job completed" in done.stderr
    assert int((bai.home / "dispatcher.lock").read_text()) != killed
    # the queued job was started by the revived dispatcher too
    wait_until(lambda: _state(bai, "third") == "succeeded", "third job succeeded")
    assert stdout("first").read_text() == "first\n"

    # killed again while a stream follows a running job: the stream's polls revive it, and
    # the stream ends with the job
    second_gate = gates / "second-gate"
    _create(
        bai, tmp_path, f"echo fourth; while [ ! -e {second_gate} ]; do sleep 0.05; done", "fourth"
    )
    wait_until(lambda: stdout("fourth").exists(), "fourth job's stdout")
    _kill_dispatcher(bai)
    second_gate.touch()
    streamed = bai(
        "job", "file", "stream", "-w", "ws", "-e", "exp", "-j", "fourth", "-f", "stdout.txt"
    )
    assert streamed.stdout == "fourth\n"
    listed = {
        j["name"]: j["executionState"] for j in bai.json("job", "list", "-w", "ws", "-e", "exp")
    }
    assert listed == dict.fromkeys(("first", "second", "third", "fourth"), "succeeded")

"""Blocks of ports a host's node runners hold for their jobs' tasks: never one block twice."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from openbai.runtime.ports import FIRST_PORT, PORTS_PER_BLOCK, PortBlock


def test_a_held_block_goes_to_no_one_else_until_it_is_given_back(tmp_path: Path) -> None:
    ports = tmp_path / "ports"
    first = PortBlock.hold(ports, FIRST_PORT)
    second = PortBlock.hold(ports, FIRST_PORT)  # the same slot number, on another cluster
    assert (first.base, second.base) == (FIRST_PORT, FIRST_PORT + PORTS_PER_BLOCK)
    assert PortBlock.hold(ports, 2222).base == 2222  # Batch AI's, where it is free
    first.close()
    assert PortBlock.hold(ports, FIRST_PORT).base == FIRST_PORT
    assert ports.stat().st_mode & 0o777 == 0o700  # no job can lock a block away


def test_a_runner_that_dies_gives_its_block_back(tmp_path: Path) -> None:
    ports = tmp_path / "ports"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path\n"
            "from openbai.runtime.ports import PortBlock\n"
            f"PortBlock.hold(Path({str(ports)!r}), 2222)\n"
            "print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    assert PortBlock.hold(ports, 2222).base == FIRST_PORT
    holder.kill()
    holder.wait()
    assert PortBlock.hold(ports, 2222).base == 2222

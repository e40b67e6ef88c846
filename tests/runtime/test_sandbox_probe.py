"""A node runner that lives for one job (Slurm's) remembers, in its node state, that bwrap
works there, and does not run it again to find out; it never remembers a failure."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from openbai.runtime import sandbox
from openbai.runtime.sandbox import SandboxUnavailable, probe

BWRAP = shutil.which("bwrap")
pytestmark = pytest.mark.skipif(BWRAP is None, reason="bubblewrap is not installed")


@pytest.fixture(autouse=True)
def fresh_runner() -> Iterator[None]:
    """Each probe() below stands for a new runner process: nothing known in memory."""
    sandbox._probed.clear()
    yield
    sandbox._probed.clear()


def make_bwrap(path: Path, *, works: bool) -> None:
    body = (
        f'exec {BWRAP} "$@"'
        if works
        else 'echo "bwrap: No permission to create a namespace" >&2; exit 1'
    )
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def test_a_success_is_remembered_for_this_binary(tmp_path: Path) -> None:
    state = tmp_path / "node-state"
    state.mkdir()
    bwrap = tmp_path / "bwrap"
    make_bwrap(bwrap, works=True)
    probe(str(bwrap), state)
    assert (state / "sandbox-probe").is_file()

    # the same binary (same inode and mtime) now fails if run: a remembered probe does not run it
    made = os.stat(bwrap).st_mtime_ns
    make_bwrap(bwrap, works=False)
    os.utime(bwrap, ns=(made, made))
    sandbox._probed.clear()
    probe(str(bwrap), state)


def test_another_binary_is_probed_again_and_a_failure_never_remembered(tmp_path: Path) -> None:
    state = tmp_path / "node-state"
    state.mkdir()
    bwrap = tmp_path / "bwrap"
    make_bwrap(bwrap, works=True)
    probe(str(bwrap), state)

    make_bwrap(bwrap, works=False)
    os.utime(bwrap, ns=(1, 1))  # another binary: another mtime
    sandbox._probed.clear()
    with pytest.raises(SandboxUnavailable, match="No permission to create a namespace"):
        probe(str(bwrap), state)

    make_bwrap(bwrap, works=True)
    os.utime(bwrap, ns=(1, 1))
    sandbox._probed.clear()
    probe(str(bwrap), state)  # the failure above was not remembered


def test_without_a_node_state_nothing_is_written(tmp_path: Path) -> None:
    bwrap = tmp_path / "bwrap"
    make_bwrap(bwrap, works=False)
    with pytest.raises(SandboxUnavailable):
        probe(str(bwrap), None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bwrap"]

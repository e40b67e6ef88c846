"""A slot's control groups, as a runner uses them: tasks start inside, or not at all."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from openbai.plan.job_plan import NodeLimits
from openbai.runtime.cgroups import Cgroup


@pytest.fixture
def group() -> Iterator[Cgroup]:
    made = Cgroup.create(f"openbai-test-{uuid.uuid4().hex[:8]}", NodeLimits(processes=64))
    if made is None:
        pytest.skip("no control group can be made here (not root, or no controllers)")
    yield made
    made.remove()


def test_a_task_starts_inside_its_groups(group: Cgroup) -> None:
    shown = subprocess.run(
        group.entered_by(["cat", "/proc/self/cgroup"]), capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    lines = [line for line in shown.stdout.splitlines() if line.endswith("/" + group.name)]
    assert len(lines) == len(group.dirs), shown.stdout


def test_a_task_that_cannot_join_its_groups_never_runs(group: Cgroup, tmp_path: Path) -> None:
    """Its groups gone (an administrator's cleanup, say), the task fails with the shell's
    "cannot execute" code and says why, and its command is not run outside them."""
    marker = tmp_path / "ran"
    group.remove()
    failed = subprocess.run(
        group.entered_by(["touch", str(marker)]), capture_output=True, text=True
    )
    assert failed.returncode == 126
    assert "openbai: the task could not join its control group" in failed.stderr
    assert not marker.exists()

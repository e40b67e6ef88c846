"""A slot's control groups, as a runner uses them: tasks start inside, or not at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from openbai.plan.job_plan import NodeLimits
from openbai.runtime.cgroups import LEAF, Cgroup


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


#: the v2 hierarchy of a host that keeps the others on v1 (as this one does): hugetlb, which no
#: v1 hierarchy holds, is a v2 controller here, under the kernel's v2 rules all the same
UNIFIED = Path("/sys/fs/cgroup/unified")

_RUNNER = """
import json, os, sys
from pathlib import Path
from openbai.plan.job_plan import NodeLimits
from openbai.runtime import cgroups

started_in, name = Path(sys.argv[1]), sys.argv[2]
(started_in / "cgroup.procs").write_text(str(os.getpid()))
cgroups.ROOT, cgroups.V2_CONTROLLERS = Path(sys.argv[3]), ("hugetlb",)
made = cgroups.Cgroup.create(name, NodeLimits())
print(json.dumps(None if made is None else str(made.dirs[""])))
"""


def v2_group(pid: int) -> str:
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    return next(line.split(":", 2)[2] for line in lines if line.startswith("0::"))


@pytest.fixture
def service_group() -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    """A v2 group as systemd gives a service: the server is in it, and so is what it starts."""
    if os.getuid() != 0 or "hugetlb" not in _read(UNIFIED / "cgroup.controllers").split():
        pytest.skip("needs root and a v2 controller (hugetlb in a hybrid hierarchy)")
    (UNIFIED / "cgroup.subtree_control").write_text("+hugetlb")  # the root may: it is exempt
    service = UNIFIED / f"openbai-test-{uuid.uuid4().hex[:8]}"
    service.mkdir()
    server = subprocess.Popen(["sleep", "300"])
    (service / "cgroup.procs").write_text(str(server.pid))
    yield service, server
    server.kill()
    server.wait()
    for child in sorted(service.iterdir(), reverse=True):
        if child.is_dir():
            child.rmdir()
    service.rmdir()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def slot_made_by_a_runner_in(group: Path, name: str) -> str | None:
    shown = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(group), name, str(UNIFIED)],
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 0, shown.stderr
    made: str | None = json.loads(shown.stdout)
    return made


def test_on_v2_a_runner_sharing_its_group_with_the_server_still_makes_its_slots_group(
    service_group: tuple[Path, subprocess.Popen[bytes]],
) -> None:
    """A v2 group that hands controllers to children may hold no process: the runner moved
    only itself down, the server stayed, and the kernel refused (EBUSY): no limits at all."""
    service, server = service_group
    made = slot_made_by_a_runner_in(service, "openbai-slot-1")
    assert made == str(service / "openbai-slot-1")
    assert "hugetlb" in (service / "cgroup.subtree_control").read_text().split()
    assert "hugetlb" in (service / "openbai-slot-1" / "cgroup.controllers").read_text().split()
    leaf = "/" + str((service / LEAF).relative_to(UNIFIED))
    assert v2_group(server.pid) == leaf  # the server went one level down, and works on

    # a runner that the server starts now starts in the leaf: its slot goes beside it
    made = slot_made_by_a_runner_in(service / LEAF, "openbai-slot-2")
    assert made == str(service / "openbai-slot-2")

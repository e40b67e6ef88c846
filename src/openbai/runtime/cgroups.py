"""A node slot's control group: its CPU, memory and process-count limits, every process its
tasks start (so that none is missed when the job ends), and whether the kernel killed one for
memory.

Groups are made below the runner's own group of each controller (as a delegated subtree
should be used), on cgroup v1 (one hierarchy per controller) or v2 (one unified tree). Where
no group can be made (not root, controllers absent) the slot runs without limits and the
execution log says so.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from openbai.plan.job_plan import NodeLimits

ROOT = Path("/sys/fs/cgroup")
#: the v1 controllers a slot uses, by the file each sets
_V1_CONTROLLERS = ("memory", "pids", "cpu")
#: the v2 controllers a slot's group is given where its parent has them
V2_CONTROLLERS = ("memory", "pids", "cpu")
#: on v2, the leaf that the processes of the runner's own group move into: a group that hands
#: controllers to its children may hold no process itself (the server's, under systemd, are
#: there with the runner's), so they go one level down, and the slots' groups beside them
LEAF = "openbai-processes"
CPU_PERIOD_US = 100_000
_SH = shutil.which("sh") or "/bin/sh"


def _own_paths() -> dict[str, str]:
    """This process's group in each hierarchy: controller (or "" for v2) -> path."""
    paths = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


def _write(path: Path, value: str) -> None:
    path.write_text(value)


class Cgroup:
    """The groups of one node slot (one per v1 controller, or one v2 group)."""

    def __init__(self, name: str, limits: NodeLimits, dirs: dict[str, Path] | None = None):
        self.name = name
        self.limits = limits
        #: controller -> the group's directory ("" for v2)
        self.dirs: dict[str, Path] = {} if dirs is None else dirs
        #: groups made by someone else for the slot's processes (a container runtime's, with
        #: the same limits): their OOM kills and process-limit hits count as the slot's; their
        #: processes are their maker's to end (the container's end takes them all)
        self.watched: list[Path] = []

    @classmethod
    def create(cls, name: str, limits: NodeLimits) -> Cgroup | None:
        """The slot's groups with ``limits`` set; None when none can be made here."""
        group = cls(name, limits)
        try:
            own = _own_paths()
            if (ROOT / "cgroup.controllers").exists():
                group._create_v2(own.get("", "/"))
            else:
                group._create_v1(own)
        except OSError:
            group.remove()
            return None
        return group if group.dirs else None

    def _create_v1(self, own: dict[str, str]) -> None:
        for controller in _V1_CONTROLLERS:
            parent = ROOT / controller
            if controller not in own or not parent.is_dir():
                continue
            path = parent / own[controller].lstrip("/") / self.name
            path.mkdir(exist_ok=True)
            self.dirs[controller] = path
        lim = self.limits
        if lim.memory_bytes and "memory" in self.dirs:
            memory = self.dirs["memory"]
            _write(memory / "memory.limit_in_bytes", str(lim.memory_bytes))
            swap = memory / "memory.memsw.limit_in_bytes"
            if swap.exists():  # no swapping past the limit either
                _write(swap, str(lim.memory_bytes))
        if lim.processes and "pids" in self.dirs:
            _write(self.dirs["pids"] / "pids.max", str(lim.processes))
        if lim.cpus and "cpu" in self.dirs:
            _write(self.dirs["cpu"] / "cpu.cfs_period_us", str(CPU_PERIOD_US))
            _write(self.dirs["cpu"] / "cpu.cfs_quota_us", str(int(lim.cpus * CPU_PERIOD_US)))

    def _create_v2(self, own: str) -> None:
        parent = _slots_parent(own)
        wanted = set(V2_CONTROLLERS) & set((parent / "cgroup.controllers").read_text().split())
        _hand_down(parent, wanted)
        path = parent / self.name
        path.mkdir(exist_ok=True)
        self.dirs[""] = path
        lim = self.limits
        if lim.memory_bytes and "memory" in wanted:
            _write(path / "memory.max", str(lim.memory_bytes))
            _write(path / "memory.swap.max", "0")
        if lim.processes and "pids" in wanted:
            _write(path / "pids.max", str(lim.processes))
        if lim.cpus and "cpu" in wanted:
            _write(path / "cpu.max", f"{int(lim.cpus * CPU_PERIOD_US)} {CPU_PERIOD_US}")

    def entered_by(self, argv: Sequence[str]) -> list[str]:
        """``argv`` started inside the groups: a shell moves itself in, then becomes ``argv``,
        so that nothing of ``argv`` runs outside. (Moving the child between fork and exec
        would make Python fork the whole runner, ~8 ms of every task's start, where spawning
        a process costs ~1 ms and the shell about as much.)

        On v1 the shell moves its one thread ("0" into ``tasks``): moving a whole process
        takes the kernel's lock on every thread group, which waits for an RCU grace period,
        8 to 25 ms a task on these machines, where moving the calling thread does not. A v2
        domain group takes only whole processes."""
        files = [
            (str(d / ("cgroup.procs" if controller == "" else "tasks")), controller == "")
            for controller, d in self.dirs.items()
        ]
        moves = " && ".join(
            f'echo {"$$" if whole else 0} > "${i}"' for i, (_, whole) in enumerate(files, 1)
        )
        script = (
            f"{moves} || {{ echo 'openbai: the task could not join its control group' >&2;"
            f' exit 126; }}; shift {len(files)}; exec "$@"'
        )
        return [_SH, "-c", script, "openbai-cgroup", *(name for name, _ in files), *argv]

    def watch(self, dirs: Iterable[Path]) -> None:
        self.watched.extend(d for d in dirs if d not in self.watched)

    def pids(self) -> set[int]:
        found: set[int] = set()
        for d in self.dirs.values():
            try:
                found.update(int(p) for p in (d / "cgroup.procs").read_text().split())
            except OSError:
                pass
        return found

    def _counter(self, filename: str, key: str) -> int:
        """The sum of a counter over the slot's groups and those it watches."""
        total = 0
        for d in [*self.dirs.values(), *self.watched]:
            try:
                for line in (d / filename).read_text().splitlines():
                    name, _, value = line.partition(" ")
                    if name == key:
                        total += int(value)
            except OSError:
                continue
        return total

    def oom_kills(self) -> int:
        """How many processes the kernel killed for going past the memory limit."""
        return self._counter("memory.oom_control", "oom_kill") or self._counter(
            "memory.events", "oom_kill"
        )

    def process_limit_hits(self) -> int:
        """How many times a fork failed at the process-count limit."""
        return self._counter("pids.events", "max")

    def kill_all(self, *, timeout: float = 2.0) -> bool:
        """SIGKILL every process in the group until it is empty; whether it emptied in time."""
        deadline = time.monotonic() + timeout
        # what is left after a sandboxed task is usually its PID namespace's init, still
        # tearing the namespace down (a few ms after bwrap itself exited): looked at again
        # soon, then less often
        pause = 0.0005
        while True:
            pids = self.pids()
            if not pids:
                return True
            if time.monotonic() > deadline:
                return False
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(pause)
            pause = min(pause * 2, 0.01)

    def remove(self) -> None:
        for d in self.dirs.values():
            try:
                d.rmdir()
            except OSError:
                pass

    def describe(self) -> str:
        lim = self.limits
        parts = [
            f"{lim.cpus:g} CPUs" if lim.cpus else "CPUs unbounded",
            f"{lim.memory_bytes // 2**20} MiB memory" if lim.memory_bytes else "memory unbounded",
            f"{lim.processes} processes" if lim.processes else "processes unbounded",
        ]
        version = "v2" if "" in self.dirs else "v1"
        return f"limits {', '.join(parts)} (cgroup {version} {self.name})"


def _slots_parent(own: str) -> Path:
    """The v2 group the slots' groups are made in: the runner's own, or the one above the leaf
    its processes moved into (a runner started by a process there)."""
    group = ROOT / own.lstrip("/")
    return group.parent if group.name == LEAF else group


def _hand_down(parent: Path, controllers: set[str]) -> None:
    """Enable ``controllers`` for the children of ``parent``, first moving the processes in it
    (the runner, and those it shares the group with) into its leaf when the kernel refuses
    while they are there (EBUSY; the hierarchy's root takes it with them)."""
    if not controllers:
        return
    line = " ".join(f"+{c}" for c in sorted(controllers))
    for _ in range(5):
        try:
            _write(parent / "cgroup.subtree_control", line)
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise
        leaf = parent / LEAF
        leaf.mkdir(exist_ok=True)
        for pid in (parent / "cgroup.procs").read_text().split():
            try:
                _write(leaf / "cgroup.procs", pid)
            except ProcessLookupError:
                pass  # it ended meanwhile; one forked meanwhile is moved on the next round
    _write(parent / "cgroup.subtree_control", line)


def groups_of(pid: int) -> list[Path]:
    """The directories of the groups process ``pid`` is in, of the controllers a slot uses
    (for :meth:`Cgroup.watch`); empty once it is gone."""
    unified = (ROOT / "cgroup.controllers").exists()
    found = []
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if unified:
            if not controllers:
                found.append(ROOT / path.lstrip("/"))
            continue
        for name in controllers.split(","):
            if name in _V1_CONTROLLERS and (ROOT / name).is_dir():
                found.append(ROOT / name / path.lstrip("/"))
    return found


def remove_groups(prefix: str) -> None:
    """Remove the groups named ``prefix*`` below this process's groups, killing what is
    left in them: those of a job whose runner was lost before it could remove its own."""
    try:
        own = _own_paths()
    except OSError:
        return
    parents = [ROOT / c / own[c].lstrip("/") for c in _V1_CONTROLLERS if c in own]
    if "" in own:
        parents.append(_slots_parent(own[""]))
    for parent in parents:
        for group in parent.glob(f"{prefix}*") if parent.is_dir() else []:
            Cgroup(group.name, NodeLimits(), {"": group}).kill_all()  # and its last reaped
            try:
                group.rmdir()
            except OSError:
                pass

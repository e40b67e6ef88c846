"""A started container's bound folders are checked to be the ones the runner meant, before
any task runs in it.

A container runtime binds each folder by its path (podman and docker ``-v PATH:PATH``,
apptainer ``--bind``), resolved as root when the container starts, following links. Embedded
volumes are shared between jobs: another job may swap a volume's folder (or a folder on the way
to it below the volume's directory) for a link to any host folder just before the start, and
the container would get that host folder, read-write, at the volume's path. The runtime cannot
be handed a descriptor (as bubblewrap is, runtime/sandbox.py), so the race is closed by a check
instead:

* before the start, each folder to bind is opened and held: a volume's folder from its anchor,
  through no link (mounts/link.py); openbai's own folders (the mount root, the job temp, the
  run's folders) by their path, as the runtime resolves them (the host sandbox binds them by
  path too): what the runtime resolves later must be what the runner saw then;
* once the container runs (its keeper said so) and before the runner asks it to start a task,
  each bound path is walked in the container's own view (``/proc/PID/root`` of its first
  process, whose mount namespace it is), one name at a time, following no link (a link on the
  way would mean the folder there is not the one bound at that path), and the folder found
  must be the one held: the same device and inode.

Anything else fails the job before it ran anything (:class:`BindChanged`), and the container
is removed.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from openbai.errors import MountError
from openbai.mounts.link import Anchor, open_anchor
from openbai.runtime import containers

#: a folder held or walked to only to be identified: no read access needed, nothing opened
_PATH_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
#: a name of a path in the container: never a link
_STEP_FLAGS = _PATH_FLAGS | os.O_NOFOLLOW
#: how long the runtime may take to say which process is the container's first
_PID_TIMEOUT_SECONDS = 60.0

Identity = tuple[int, int]


class BindChanged(Exception):
    """A folder to bind is not the one the container got (or cannot be told to be)."""

    def __init__(self, path: Path | None, why: str):
        super().__init__(f"{path}: {why}" if path is not None else why)
        self.path = path
        self.why = why


@dataclass
class Expected:
    """The folders the container must have at each bound path, held open from before it
    started (a folder held cannot be removed and its inode reused meanwhile)."""

    folders: dict[Path, int] = field(default_factory=dict)

    def close(self) -> None:
        for fd in self.folders.values():
            os.close(fd)
        self.folders.clear()

    def __enter__(self) -> Expected:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def expect(
    binds: Iterable[Path], anchors: Mapping[Path, Anchor], read_only: Iterable[Path] = ()
) -> Expected:
    """Open each folder the container is to bind (``containers.bound``): those that have
    an anchor (a volume's folder, written by jobs) from it through no link, the others by
    their path. A link on the way to an anchored one, or a folder missing, is BindChanged."""
    expected = Expected()
    try:
        for path, _ in containers.bound(binds, read_only):
            expected.folders[path] = _hold(path, anchors.get(path))
    except BaseException:
        expected.close()
        raise
    return expected


def _hold(path: Path, anchor: Anchor | None) -> int:
    if anchor is not None:
        try:
            return open_anchor(anchor)
        except MountError as exc:
            raise BindChanged(path, exc.message) from None
    try:
        # by its path, links followed, as the runtime will: openbai's own folders
        return os.open(path, _PATH_FLAGS)
    except OSError as exc:
        raise BindChanged(path, f"cannot be bound: {exc.strerror}") from None


def verify(runtime: str, name: str, expected: Expected) -> None:
    """Check that the running container ``name`` has, at each path of ``expected``, the folder
    held there; BindChanged when it has not, or when its view cannot be looked at."""
    pid = container_pid(runtime, name)
    verify_process(pid, expected)


def verify_process(pid: int, expected: Expected) -> None:
    """Check the bound folders as the process ``pid`` (the container's first) sees them."""
    try:
        # its /proc folder: the entries below are this process's, or gone with it (never
        # those of a process that took its number since)
        proc = os.open(f"/proc/{pid}", _PATH_FLAGS)
    except OSError as exc:
        raise BindChanged(None, f"the container's process {pid} is gone: {exc.strerror}") from None
    try:
        if _mount_namespace(proc) == os.stat("/proc/self/ns/mnt").st_ino:
            # the host's own view: checking it would prove nothing of the container's
            raise BindChanged(None, f"process {pid} is not in the container's mount namespace")
        try:
            root = os.open("root", _PATH_FLAGS, dir_fd=proc)
        except OSError as exc:
            raise BindChanged(None, f"cannot see the container's files: {exc.strerror}") from None
        try:
            for path, fd in expected.folders.items():
                _check(root, path, _identity(os.fstat(fd)))
        finally:
            os.close(root)
    finally:
        os.close(proc)


def _mount_namespace(proc: int) -> int:
    try:
        return os.stat("ns/mnt", dir_fd=proc).st_ino
    except OSError as exc:
        raise BindChanged(None, f"cannot see the container's namespaces: {exc.strerror}") from None


def _check(root: int, path: Path, wanted: Identity) -> None:
    """The folder at ``path`` below the container's ``root`` is ``wanted``, reached through
    no link (the runtime placed the bind at the path as given: a link in the image on the way
    would put it elsewhere than where it is checked)."""
    fd = os.dup(root)
    try:
        for name in path.parts[1:]:
            if name in (".", ".."):
                raise BindChanged(path, "is not a plain path")
            try:
                inner = os.open(name, _STEP_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise BindChanged(
                    path, f"is not a folder in the container ({name}: {exc.strerror})"
                ) from None
            os.close(fd)
            fd = inner
        seen = os.fstat(fd)
    finally:
        os.close(fd)
    if not stat.S_ISDIR(seen.st_mode):
        raise BindChanged(path, "is not a folder in the container")
    if _identity(seen) != wanted:
        raise BindChanged(
            path,
            "changed while the container started: the folder bound there is not the one "
            "the runner opened (a link was put on the way, or the folder was replaced)",
        )


def _identity(st: os.stat_result) -> Identity:
    return (st.st_dev, st.st_ino)


def container_pid(runtime: str, name: str) -> int:
    """The host's process id of the container's first process, as its runtime tells it."""
    argv = containers.pid_argv(runtime, name)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=_PID_TIMEOUT_SECONDS)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BindChanged(
            None, f"{runtime} did not say which process the container is: {exc}"
        ) from None
    pid = parse_pid(runtime, name, done.stdout) if done.returncode == 0 else None
    if pid is None:
        shown = (done.stderr or done.stdout).strip()[-300:]
        raise BindChanged(None, f"{runtime} did not say which process the container is: {shown}")
    return pid


def parse_pid(runtime: str, name: str, output: str) -> int | None:
    """The process id in the output of ``containers.pid_argv``; None where there is none."""
    if runtime == containers.APPTAINER:
        try:
            listed = json.loads(output).get("instances") or []
        except (ValueError, AttributeError):
            return None
        found = [i.get("pid") for i in listed if isinstance(i, dict) and i.get("instance") == name]
        value = str(found[0]) if len(found) == 1 else ""
    else:
        value = output.strip()
    return int(value) if value.isdigit() and int(value) > 0 else None

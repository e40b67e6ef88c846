"""Every task of a job runs sealed off, in a bubblewrap (``bwrap``) sandbox:

* its own mount namespace: the host read-only, fresh ``/tmp`` and ``/dev/shm``, and of the
  installation's private trees (``$OPENBAI_HOME``, run directories, node roots) only its own
  node root, its job's shared temp directory and the volumes it mounts, read-write;
* its own PID namespace: it sees and signals only its own processes, and when its main
  command exits the namespace ends and the kernel kills whatever it left behind;
* never the server's identity: under root, tasks run as an unprivileged user
  (``OPENBAI_JOB_USER``, default ``openbai-job`` if it exists, else ``nobody``), with no
  capabilities and no new privileges.

The runner (outside) makes the mounts; bwrap only binds them in. A directory the job user
cannot pass through on the host (``/root``, a 0700 ``$OPENBAI_HOME``) is replaced by an
empty one in the sandbox, in which only what the job needs is bound back.
"""

from __future__ import annotations

import functools
import os
import pwd
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from openbai.errors import ExecutorError
from openbai.files import write_private
from openbai.folders import FOLDER_FLAGS
from openbai.mounts.link import Anchor, anchored_path, open_anchor
from openbai.plan.job_plan import MountSpec
from openbai.runtime.gpu_devices import GpuView

#: the variable that names the user jobs run as (else the first of DEFAULT_JOB_USERS)
JOB_USER = "OPENBAI_JOB_USER"
DEFAULT_JOB_USERS = ("openbai-job", "nobody")


class SandboxUnavailable(ExecutorError):
    """No sandbox can be made on this node."""

    code = "SandboxUnavailable"


class Identity(NamedTuple):
    """The user a job's tasks run as."""

    uid: int
    gid: int
    name: str

    @classmethod
    def current(cls) -> Identity:
        uid = os.getuid()
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = str(uid)
        return cls(uid, os.getgid(), name)

    @classmethod
    def for_jobs(cls, configured: str | None = None) -> Identity:
        """Under root, the unprivileged job user; otherwise the runner's own user (looked up
        once per process: a fork server's runners inherit it, see :func:`warm`)."""
        return _job_identity(configured, os.getuid())

    @classmethod
    def _look_up(cls, configured: str | None) -> Identity:
        if os.getuid() != 0:
            return cls.current()
        names = [configured] if configured else list(DEFAULT_JOB_USERS)
        for name in names:
            try:
                entry = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
            except KeyError:
                continue
            if entry.pw_uid == 0:
                raise SandboxUnavailable(f"OPENBAI_JOB_USER={name} is root: jobs never run as root")
            return cls(entry.pw_uid, entry.pw_gid, entry.pw_name)
        raise SandboxUnavailable(f"no user to run jobs as: {' or '.join(names)} does not exist")

    @property
    def switches(self) -> bool:
        return self.uid != os.getuid()


@functools.lru_cache(maxsize=8)
def _job_identity(configured: str | None, uid: int) -> Identity:
    return Identity._look_up(configured)  # a failure is not remembered: it raises


#: tools found on the PATH, by (name, PATH): a fork server finds them once for its runners
#: (a tool not found is looked for again next time)
_found: dict[tuple[str, str | None], str] = {}


def _which(name: str) -> str | None:
    key = (name, os.environ.get("PATH"))
    if key not in _found:
        path = shutil.which(name)
        if path is None:
            return None
        _found[key] = path
    return _found[key]


def find_setpriv() -> str | None:
    """util-linux's ``setpriv``, which drops the job user's privileges in the sandbox."""
    return _which("setpriv")


def find_bwrap() -> str:
    """bubblewrap: ``OPENBAI_BWRAP`` (a path), else ``bwrap`` on the ``PATH``."""
    path = _which(os.environ.get("OPENBAI_BWRAP") or "bwrap")
    if path is None:
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed on this node: install it (Debian package "
            "'bubblewrap'), or create the cluster with --no-sandbox"
        )
    return path


#: probe results by bwrap path (None: it works), kept by a fork server for its runners
_probed: dict[str, str | None] = {}


def probe(bwrap: str, remember_in: Path | None = None) -> None:
    """Fail clearly when bwrap cannot make namespaces here (no user namespaces, say).

    A node runner that lives for one job only (Slurm's) remembers a success in the node's
    state directory ``remember_in``, for this boot of the machine and this bwrap binary:
    probing costs a process and a sandbox's start, a good part of a trivial job's time. A
    failure is never remembered, so that a node whose administrator enables user namespaces
    works at once."""
    if bwrap not in _probed:
        proof = _proof_file(bwrap, remember_in)
        if proof is not None and proof[0].is_file() and proof[0].read_text() == proof[1]:
            _probed[bwrap] = None
        else:
            _probed[bwrap] = _try(bwrap)
            if _probed[bwrap] is None and proof is not None:
                try:
                    write_private(proof[0], proof[1], durable=False)
                except OSError:
                    pass  # a read-only node state: probe again next time
    reason = _probed[bwrap]
    if reason is not None:
        raise SandboxUnavailable(
            f"no sandbox can be made on this node ({reason}): enable user namespaces, or "
            "create the cluster with --no-sandbox"
        )


def _proof_file(bwrap: str, directory: Path | None) -> tuple[Path, str] | None:
    """Where a successful probe is remembered, and what it must say to hold: the boot, the
    bwrap binary and the user it ran as."""
    if directory is None or not directory.is_dir():
        return None
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        st = os.stat(bwrap)
    except OSError:
        return None
    return directory / "sandbox-probe", f"{boot} {st.st_ino} {st.st_mtime_ns} {os.getuid()}\n"


def warm(env: dict[str, str] | None = None) -> None:
    """Before a fork server forks runners: probe bwrap once, and look up what every runner
    of a sandboxed job looks up the same way (the job user, bwrap and setpriv, the tool
    paths of ``env`` and the directories on their way), so that runners inherit it instead
    of each doing it again (~1 ms of CPU a job)."""
    try:
        bwrap = find_bwrap()
        probe(bwrap)
        identity = Identity.for_jobs(os.environ.get(JOB_USER))
        find_setpriv()
        tools = tool_paths(env if env is not None else dict(os.environ))
        Sandbox(bwrap, identity, readable=tools).prefix()
    except (SandboxUnavailable, OSError):
        pass  # each runner finds out for itself, and fails its job clearly where it must


def _try(bwrap: str) -> str | None:
    result = subprocess.run(
        [bwrap, "--ro-bind", "/", "/", "--unshare-pid", "--", "true"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        return result.stderr.strip().removeprefix("bwrap: ") or f"exit code {result.returncode}"
    return None


def _traversable(path: str, who: Identity) -> bool:
    return who.uid == 0 or _passable(path, who.uid, who.gid)


# remembered: a runner asks again for every task, and those on the way to the tool paths
# are asked once by the fork server (warm); a directory whose mode changes afterwards is
# at worst emptied in the sandbox with its tools bound back, or left for its own mode to guard
@functools.lru_cache(maxsize=512)
def _passable(path: str, uid: int, gid: int) -> bool:
    st = os.stat(path)
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


# paths as strings: the sandbox's arguments are made for every task, and pathlib's
# parents and comparisons cost more there than bwrap's own start (~4 ms a job)


def _under(path: str, roots: Iterable[str]) -> str | None:
    """The root of ``roots`` that is ``path`` or one of its parents."""
    return next((r for r in roots if path == r or path.startswith(r.rstrip("/") + "/")), None)


def _parents(path: str) -> list[str]:
    """``path``'s parents below ``/``, outermost first (``/a/b/c``: ``/a``, ``/a/b``)."""
    parts = path.split("/")[1:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


class Sandbox:
    def __init__(
        self,
        bwrap: str,
        identity: Identity,
        *,
        hidden: Iterable[Path] = (),
        writable: Iterable[Path] = (),
        readable: Iterable[Path] = (),
        gpus: GpuView | None = None,
    ):
        self.bwrap = bwrap
        self.identity = identity
        #: trees the job must not see (emptied in the sandbox)
        self.hidden = list(hidden)
        #: what is bound back read-write (its node root, volumes) and read-only (tools)
        self.writable = list(writable)
        self.readable = list(readable)
        #: the host's GPU device files the job uses, and the driver's list of their boards
        self.gpus = gpus or GpuView([], {})
        #: volumes' folders below which jobs write (mounts/link.py): bound from a descriptor
        #: reached through no link, never by their path, which another job may swap for a
        #: link to a folder it must not reach between two tasks' starts
        self.anchors: dict[Path, Anchor] = {}
        #: the descriptors the last :meth:`prefix` binds from: the caller passes them to
        #: bwrap, then closes them (:meth:`take_fds`)
        self._fds: list[int] = []
        #: writable folders not made the job user's before :meth:`release`: the runner still
        #: works in them by path (it mounts there), where the job user could put a link
        self.held: set[Path] = set()

    def grant(self, path: Path, anchor: Anchor | None = None) -> None:
        """Make ``path`` and what is below it the job user's, so that the job can write
        there. Mount points and other file systems below it are left alone, and so are
        directories that are the job user's already (what earlier jobs made: a volume is
        not walked whole for every job). Nothing is reached through a link: ``path`` is
        opened from its ``anchor`` where it has one (a volume's folder below which jobs
        write), and the walk goes through descriptors."""
        if not self.identity.switches or path in self.held:
            return
        try:
            fd = open_anchor(anchor) if anchor is not None else os.open(path, FOLDER_FLAGS)
        except FileNotFoundError:
            return
        try:
            self._grant_below(fd)
        finally:
            os.close(fd)

    def bind_embedded(self, folders: Iterable[tuple[MountSpec, Anchor]]) -> None:
        """Bind embedded volumes' folders (``mounts.link.embedded_folders``) from their
        anchors, read-only where mounted so: never by following a link found on a node."""
        for spec, anchor in folders:
            source = anchored_path(anchor)
            self.anchors[source] = anchor
            (self.readable if spec.read_only else self.writable).append(source)

    def release(self) -> None:
        """Make the folders :attr:`held` back the job user's, as :meth:`grant` does."""
        held, self.held = self.held, set()
        for path in sorted(held):
            self.grant(path)

    def _grant_below(self, fd: int) -> None:
        uid, gid = self.identity.uid, self.identity.gid
        top = os.fstat(fd)
        if top.st_uid != uid:
            os.fchown(fd, uid, gid)
        else:
            return
        for _, dirs, files, folder in os.fwalk(".", dir_fd=fd):  # into no link
            keep = []
            for name in dirs:
                st = os.stat(name, dir_fd=folder, follow_symlinks=False)
                if st.st_dev == top.st_dev and st.st_uid != uid:
                    os.chown(name, uid, gid, dir_fd=folder, follow_symlinks=False)
                    keep.append(name)
            for name in files:
                st = os.stat(name, dir_fd=folder, follow_symlinks=False)
                if st.st_dev == top.st_dev and st.st_uid != uid:
                    os.chown(name, uid, gid, dir_fd=folder, follow_symlinks=False)
            dirs[:] = keep

    def grant_path(self, path: Path, root: Path) -> None:
        """Make ``path`` and each directory between ``root`` and it the job user's (folders
        the runner made for the job's outputs), going down from ``root`` through no link."""
        if not self.identity.switches:
            return
        uid, gid = self.identity.uid, self.identity.gid
        fd = os.open(root, FOLDER_FLAGS)
        try:
            for name in path.relative_to(root).parts:
                inner = os.open(name, FOLDER_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = inner
                if os.fstat(fd).st_uid != uid:
                    os.fchown(fd, uid, gid)
        finally:
            os.close(fd)

    def prefix(self) -> list[str]:
        """bwrap's arguments up to the command: the sandbox's file system."""
        args = [self.bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        args += ["--perms", "1777", "--tmpfs", "/dev/shm", "--perms", "1777", "--tmpfs", "/tmp"]
        for device in self.gpus.devices:
            args += ["--dev-bind", str(device), str(device)]
        for folder, kept in self.gpus.narrowed.items():
            shown = real_path(str(folder))
            if shown is None:
                continue
            args += ["--perms", "0555", "--tmpfs", shown]
            for entry in _existing(kept):
                args += ["--ro-bind", entry, entry]
        anchored = {str(p): a for p, a in self.anchors.items()}
        binds = [(p, "--bind") for p in _existing(self._by_path(self.writable))]
        binds += [(p, "--ro-bind") for p in _existing(self._by_path(self.readable))]
        binds += [(str(p), "--bind") for p in self.writable if str(p) in anchored]
        binds += [(str(p), "--ro-bind") for p in self.readable if str(p) in anchored]
        # what is hidden, and every directory on the way to a bind that the job user could
        # not pass through, becomes an empty tmpfs
        empty = {"/tmp", *_existing(self.hidden)}
        for path, _ in binds:
            for parent in _parents(path):
                if _under(parent, empty):
                    continue
                if not _traversable(parent, self.identity):
                    empty.add(parent)
                    break
        tops = sorted(p for p in empty if not _under(p, empty - {p}))
        for path in tops:
            if path != "/tmp":
                args += ["--perms", "0755", "--tmpfs", path]
        made: set[str] = set(tops)
        bound: dict[str, str] = {}
        for path, how in sorted(binds, key=lambda b: b[0].count("/")):
            top = _under(path, tops)
            inside = max((b for b in bound if _under(path, [b])), key=len, default=None)
            if how == "--ro-bind" and (
                (inside is None and top is None) or (inside and bound[inside] == how)
            ):
                continue  # the host's own, read-only already, or bound read-only with its parent
            if top is not None:
                for p in _parents(path):
                    if p not in made and p.startswith(top + "/"):
                        args += ["--perms", "0755", "--dir", p]
                        made.add(p)
            if path in anchored:
                fd = open_anchor(anchored[path])
                self._fds.append(fd)
                args += [f"{how}-fd", str(fd), path]
            else:
                args += [how, path, path]
            made.add(path)
            bound[path] = how
        # its own System V IPC too: a shared memory segment outlives its process, and every
        # job runs as the one job user
        args += ["--unshare-pid", "--unshare-ipc", "--die-with-parent", "--new-session"]
        if not self.identity.switches:
            args += ["--cap-drop", "ALL"]
        return args

    def _by_path(self, paths: list[Path]) -> list[Path]:
        return [p for p in paths if p not in self.anchors]

    def take_fds(self) -> list[int]:
        """The descriptors the arguments made last bind from (see :attr:`anchors`): to pass
        to bwrap, and to close once it has started."""
        fds, self._fds = self._fds, []
        return fds

    def argv(self, command: Sequence[str], cwd: Path) -> list[str]:
        """``command`` run in the sandbox, in ``cwd``, as the job user."""
        args = [*self.prefix(), "--chdir", str(cwd), "--"]
        if self.identity.switches:
            # bwrap keeps root's credentials (files are checked as root): drop them inside,
            # after the mounts are made; a uid change leaves no capabilities
            args += [
                # by its path: the job's own PATH (which bwrap looks commands up in) may not
                # lead to it
                find_setpriv() or "/usr/bin/setpriv",
                f"--reuid={self.identity.uid}",
                f"--regid={self.identity.gid}",
                "--clear-groups",
                "--no-new-privs",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--",
            ]
        return args + list(command)

    def user_env(self, home: Path) -> dict[str, str]:
        """The job user's own variables (root's HOME is not its to write)."""
        if not self.identity.switches:
            return {}
        name = self.identity.name
        return {"HOME": str(home), "USER": name, "LOGNAME": name}

    def describe(self) -> str:
        mounted = ", ".join(str(p) for p in self.writable if p.exists())
        return (
            f"sandboxed (bubblewrap: own mount, PID and IPC namespaces, host read-only, no new "
            f"privileges) as user {self.identity.name} (uid {self.identity.uid}); "
            f"read-write: {mounted}"
        )


def _existing(paths: Iterable[Path]) -> list[str]:
    """The real paths of those of ``paths`` that exist."""
    found = (real_path(str(p)) for p in paths)
    return [p for p in found if p is not None]


def real_path(path: str) -> str | None:
    """``path`` with its links resolved, by the kernel (an ``O_PATH`` open, and the link
    /proc makes of it: two system calls, where os.path.realpath makes one per component);
    None when it does not exist."""
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # no /proc
        return os.path.realpath(path)
    finally:
        os.close(fd)


def tool_paths(env: dict[str, str]) -> list[Path]:
    """What the job's commands run from, bound back read-only where they lie in a directory
    the job user could not pass through (a Python installed under /root): every ``PATH``
    entry, the runner's Python and its environment, openbai's own code (where an editable
    install keeps it outside the environment: the MPI ranks' relay imports it), and pyenv's
    root for its shims. The candidates are made once per ``PATH`` (a fork server's runners
    inherit them); which of them are directories is looked at every time."""
    candidates = _tool_candidates(env.get("PATH", ""), env.get("PYENV_ROOT", ""))
    return [Path(p) for p in candidates if os.path.isdir(p)]


@functools.lru_cache(maxsize=8)
def _tool_candidates(path_var: str, pyenv_root: str) -> tuple[str, ...]:
    paths = [p for p in path_var.split(":") if p.startswith("/")]
    paths += [sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))]
    paths.append(_CODE_ROOT)
    if pyenv_root:
        paths.append(pyenv_root)
    return tuple(dict.fromkeys(os.path.normpath(p) for p in paths))


#: the directory holding package openbai
_CODE_ROOT = str(Path(__file__).resolve().parents[2])

"""Stopping a process with every process it started: SIGTERM, a grace period, SIGKILL.

Only a task still running when its job must end early is stopped this way (a task that
ended by itself needs nothing of it), so this module, with psutil, which walks the trees,
is loaded then and not by every node runner.
"""

from __future__ import annotations

import os
import signal

import psutil

from openbai.runtime.processes import GRACE_SECONDS


def kill_tree(pid: int, *, grace: float = GRACE_SECONDS) -> None:
    """Stop a process, its process group and every descendant: SIGTERM, then SIGKILL."""
    procs = _tree(pid)
    _signal_all(pid, procs, signal.SIGTERM)
    _, alive = psutil.wait_procs(procs, timeout=grace)
    if alive:
        _signal_all(pid, alive, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=grace)


def stop_sandbox(pid: int, *, grace: float = GRACE_SECONDS) -> None:
    """Stop a sandboxed task (``pid`` is bwrap): SIGTERM to the processes inside, then
    SIGKILL to bwrap, whose PID namespace takes every process in it along."""
    procs = _tree(pid)
    inside = []
    for proc in procs[1:]:
        try:
            if proc.ppid() != pid:  # the namespace's init (bwrap) gets no SIGTERM: it would end all
                inside.append(proc)
        except psutil.NoSuchProcess:
            pass
    for proc in inside:
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(inside, timeout=grace)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    psutil.wait_procs(procs, timeout=grace)


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _signal_all(pid: int, procs: list[psutil.Process], sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)  # the group catches children that were just forked
    except (ProcessLookupError, PermissionError):
        pass
    for proc in procs:
        try:
            proc.send_signal(sig)
        except psutil.NoSuchProcess:
            pass

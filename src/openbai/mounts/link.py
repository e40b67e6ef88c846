"""Embedded volumes appear in a job as a symbolic link to their directory: no privileges,
no copy, and what the job writes is in the volume the moment it is written."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from openbai.errors import MountError, OpenBaiError
from openbai.folders import FOLDER_FLAGS, descend
from openbai.mounts.base import Log, Mount, Mounter
from openbai.plan.job_plan import MountSpec
from openbai.storage.atomic import sync_filesystems
from openbai.storage.base import VolumeKind
from openbai.storage.registry import backend_class


class LinkMount(Mount):
    def __init__(self, spec: MountSpec, path: Path, source: Path, anchor: Anchor, parent: int):
        super().__init__(spec, path)
        self.local_source: Path = source
        self.anchor: Anchor = anchor
        #: the folder holding the link, opened before the job ran: the job may move the
        #: folders on the way to it since, and the link is removed from there, not by path
        self._parent = parent

    def flush(self) -> None:
        sync_filesystems([self.local_source])

    def unmount(self, *, synced: bool = False) -> None:
        if not synced:
            self.flush()
        if self._parent < 0:
            return
        try:
            name = self.path.name
            if os.readlink(name, dir_fd=self._parent) == str(self.local_source):
                os.unlink(name, dir_fd=self._parent)
        except OSError:
            pass  # not our link any longer (the job's own doing): left as it is
        finally:
            os.close(self._parent)
            self._parent = -1


class LinkMounter(Mounter):
    name = "local"

    def mount(self, spec: MountSpec, target: Path, log: Log) -> Mount:
        anchor = anchor_of(spec)
        os.close(open_anchor(anchor, make=True))
        source = anchored_path(anchor)
        target.parent.mkdir(parents=True, exist_ok=True)
        parent = os.open(target.parent, FOLDER_FLAGS)
        try:
            os.symlink(source, target.name, target_is_directory=True, dir_fd=parent)
        except BaseException:
            os.close(parent)
            raise
        log(
            f"linked {spec.volume_kind} volume {spec.account}/{spec.volume}/{spec.subpath} at {target}"
        )
        return LinkMount(spec, target, source, anchor, parent)


#: a folder as a trusted folder (openbai's own) and the names below it, which jobs write
Anchor = tuple[Path, tuple[str, ...]]


def anchor_of(spec: MountSpec) -> Anchor:
    """Where an embedded volume's folder is: the volume's own directory is openbai's; below
    it, jobs write (another job may have put a link where a folder of the sub-path was), so
    the sub-path is walked following no link (:func:`open_anchor`)."""
    backend = backend_class(spec.backend).from_options(
        spec.account, VolumeKind(spec.volume_kind), spec.options
    )
    root = backend.local_path(spec.volume, "")
    if root is None:
        raise MountError(f"volume {spec.volume!r} of {spec.account!r} has no local directory")
    if not root.is_dir():
        raise MountError(
            f"{spec.volume_kind} volume {spec.volume!r} of account {spec.account!r} does not exist"
        )
    return Path(os.path.realpath(root)), tuple(p for p in spec.subpath.split("/") if p)


def embedded_folders(specs: Iterable[MountSpec]) -> list[tuple[MountSpec, Anchor]]:
    """The embedded volumes among ``specs``, each with the folder its link points to, where
    that is a folder still (not where a job put a link or a file since)."""
    found = []
    for spec in specs:
        if spec.backend != LinkMounter.name:
            continue
        try:
            anchor = anchor_of(spec)
            os.close(open_anchor(anchor))
        except (OpenBaiError, OSError):
            continue
        found.append((spec, anchor))
    return found


def anchored_path(anchor: Anchor) -> Path:
    """The path the anchor's folder has (a link to the volume points there)."""
    return anchor[0].joinpath(*anchor[1])


def open_anchor(anchor: Anchor, *, make: bool = False) -> int:
    """A descriptor of the folder ``anchor`` names, reached following no link below its
    trusted folder; MountError when one is on the way."""
    top = os.open(anchor[0], FOLDER_FLAGS)
    try:
        return descend(top, anchor[1], make=make)
    except OSError as exc:
        raise MountError(
            f"{anchor[0]}/{exc.filename}: not a folder (a link, or a file, was put there)"
        ) from None
    finally:
        os.close(top)

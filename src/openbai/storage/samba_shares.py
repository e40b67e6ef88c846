"""Share management for a local Samba standing in for Azure Files: registry shares via ``net``.

Samba has no REST API to create shares. The stand-in started by ``scripts/services/samba.sh``
runs with ``registry shares = yes``; a share is a directory under the config's
``openbai:share root`` exported by a registry entry, which smbd picks up on the next
connection without a reload. This module drives ``net -s SMB_CONF conf ...``, so it works only
on the machine running that smbd, as a user who may write its state (root here).

The config must be a file owned by root or by this process's user and not writable by
others: it names the directories that are created and deleted.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

from openbai.errors import ConflictError, NotFoundError, PermissionDeniedError, StorageError
from openbai.storage.names import check_volume_name

#: share names Samba gives a meaning of its own
_RESERVED = frozenset({"global", "homes", "printers", "print", "ipc"})
_ROOT_PARAMETER = "openbai:share root"


class SambaShares:
    """The registry shares of the Samba configured by ``config`` (no I/O until used)."""

    def __init__(self, config: Path, *, timeout: float = 30):
        self.config = config
        self.timeout = timeout
        self._root: Path | None = None

    # -- the share admin interface (see SmbStorage) ---------------------------------------
    def list_shares(self) -> list[str]:
        return sorted(line.strip() for line in self._net("listshares").splitlines() if line.strip())

    def create_share(self, name: str) -> None:
        check_volume_name(name)
        if name in _RESERVED:
            raise ConflictError(f"share {name!r} is a name Samba reserves", target=name)
        if self._share_path(name) is not None:
            raise ConflictError(f"share {name!r} already exists", target=name)
        root = self._share_root()
        directory = root / name
        owner = root.stat()
        # an empty directory may remain from a create that stopped before `addshare`
        directory.mkdir(mode=0o755, exist_ok=True)
        os.chown(directory, owner.st_uid, owner.st_gid)
        self._net("addshare", name, str(directory), "writeable=y", "guest_ok=n")

    def delete_share(self, name: str) -> None:
        """Delete the share's files, then the share (a retry finishes a stopped delete)."""
        check_volume_name(name)
        path = self._share_path(name)
        if path is None:
            raise NotFoundError(f"share {name!r} does not exist", target=name)
        root = self._share_root()
        if path.parent != root:
            raise PermissionDeniedError(
                f"share {name!r} ({path}) is not under {root}: not managed by openbai",
                target=name,
            )
        shutil.rmtree(path, ignore_errors=True)
        if path.exists():
            raise StorageError(f"share {name!r}: could not delete {path}", target=name)
        self._net("delshare", name)

    # -- net and testparm -----------------------------------------------------------------
    def _share_path(self, name: str) -> Path | None:
        try:
            return Path(self._net("getparm", name, "path").strip())
        except _NetError:
            return None

    def _share_root(self) -> Path:
        if self._root is None:
            out = self._run(["testparm", "-s", "--parameter-name", _ROOT_PARAMETER])
            if not out.strip():
                raise StorageError(
                    f"{self.config} sets no '{_ROOT_PARAMETER}': not an openbai Samba config",
                    target=str(self.config),
                )
            self._root = Path(out.strip())
        return self._root

    def _net(self, *args: str) -> str:
        return self._run(["net", "-s", str(self.config), "conf", *args])

    def _run(self, command: list[str]) -> str:
        self._check_config()
        if command[0] == "testparm":
            command = [*command, str(self.config)]
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=self.timeout, check=False
            )
        except FileNotFoundError as e:
            raise StorageError(
                f"{command[0]} is missing: install samba (scripts/services/samba.sh install)",
                target=command[0],
            ) from e
        except subprocess.TimeoutExpired as e:
            raise StorageError(f"{' '.join(command)} timed out", target=command[0]) from e
        if result.returncode != 0:
            raise _NetError(command, result.returncode, result.stderr.strip())
        return result.stdout

    def _check_config(self) -> None:
        """Refuse a config anyone but root or us could have written (it names what we delete)."""
        try:
            st = self.config.stat()
        except OSError as e:
            raise StorageError(
                f"Samba config {self.config}: {e.strerror or e}", target=str(self.config)
            ) from e
        if not stat.S_ISREG(st.st_mode) or st.st_uid not in (0, os.getuid()) or st.st_mode & 0o022:
            raise PermissionDeniedError(
                f"Samba config {self.config} must be a file owned by root or by this user and"
                " writable by no one else",
                target=str(self.config),
            )


class _NetError(StorageError):
    """``net``/``testparm`` exited non-zero."""

    def __init__(self, command: list[str], exit_code: int, stderr: str):
        super().__init__(
            f"{' '.join(command)} exited {exit_code}: {stderr or 'no message'}", target=command[0]
        )
        self.command = command
        self.exit_code = exit_code
        self.stderr = stderr

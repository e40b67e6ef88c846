"""``unmanagedFileSystems[].mountCommand`` read as the storage it names.

Batch AI appended the mount point to the command and ran it on the node. These nodes have no
``nfs`` or ``cifs`` in their kernel, so openbai reads the command instead and mounts the same
source through a userspace client on FUSE:

- ``mount -t nfs[4] HOST:/export [-o vers=3,port=P,mountport=M,...]``: the NFS backend
  (libnfs);
- ``mount -t cifs //HOST[:PORT]/SHARE -o username=U,password=P[,port=P]``: the SMB backend
  (the one that serves Azure file shares);
- ``mount -t glusterfs HOST:/VOLUME[/DIR] [-o server-port=P,backup-volfile-servers=H:H,ro]``:
  GlusterFS's own FUSE client (``glusterfs``, ``mounts/gluster.py``), run with openbai's
  arguments rather than the user's command, so no option can point its log or state elsewhere.

Anything else (``sshfs``, a script) is refused with :class:`MountError` naming the command:
the job fails at start with code ``AZFMountError``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openbai.errors import MountError

#: the account-name prefix of an unmanaged file system (no storage account has a ':')
PREFIX = "mount:"

_NFS_TYPES = {"nfs": 3, "nfs3": 3, "nfs4": 4}
#: the other types openbai mounts, through its own clients
_KNOWN_TYPES = frozenset({"cifs", "smb3", "glusterfs"})


@dataclass(frozen=True)
class MountSource:
    """What a mount command mounts: the account kind serving it, its options, its volume."""

    kind: str
    options: dict[str, Any]
    volume: str
    #: ``-o ro``: mounted read-only
    read_only: bool = False


#: a password in one shell word of the command (an ``-o`` list: it ends at a comma)
_SECRET = re.compile(r"(?<![\w-])((?:password|pass)=)([^,]*)")
#: the same in a command that does not read as shell words (unbalanced quotes)
_SECRET_RAW = re.compile(r"(?<![\w-])((?:password|pass)=)([^,\s]*)")
#: a password sealed with the installation's key (``seal_passwords``)
SEALED = "sealed:"


def _in_words(command: str, change: Callable[[re.Match[str]], str]) -> str:
    """``command`` with each password ``change``d, as the shell reads its words (a quoted
    password, one with blanks or quotes in it, is one value): the words written again
    quoted as needed where one changed, the command as it was where none did."""
    try:
        words = shlex.split(command)
    except ValueError:
        return _SECRET_RAW.sub(change, command)
    changed = [_SECRET.sub(change, word) for word in words]
    return command if changed == words else shlex.join(changed)


def redact(command: str) -> str:
    """The command with its password left out, for logs and error messages."""
    return _in_words(command, lambda match: match[1] + "***")


def seal_passwords(command: str, seal: Callable[[str], str]) -> str:
    """The command with each password replaced by ``sealed:TOKEN`` (``seal(password)``), as it
    is stored and shown: a job's spec, its volumes' names and download links then hold no
    password, only a token the installation alone can open."""

    def sealed(match: re.Match[str]) -> str:
        value = match[2]
        if not value or value.startswith(SEALED):
            return match[0]
        return match[1] + SEALED + seal(value)

    return _in_words(command, sealed)


def unseal_passwords(command: str, unseal: Callable[[str], str]) -> str:
    """The command as the user meant it (``unseal(token)`` gives a password back)."""

    def opened(match: re.Match[str]) -> str:
        value = match[2]
        if not value.startswith(SEALED):
            return match[0]
        return match[1] + unseal(value[len(SEALED) :])

    return _in_words(command, opened)


def _options(text: str) -> dict[str, str]:
    found = {}
    for item in text.split(","):
        key, _, value = item.partition("=")
        if key.strip():
            found[key.strip()] = value.strip()
    return found


def _number(command: str, opts: dict[str, str], name: str) -> int:
    """Port option ``name`` of the command (0 where it is not given)."""
    value = opts.get(name) or "0"
    if not value.isdigit() or int(value) > 65535:
        raise MountError(f"{redact(command)!r}: {name}={value} is not a port (0-65535)")
    return int(value)


def _nfs_version(command: str, opts: dict[str, str], default: int) -> int:
    """The NFS version asked for: ``vers=3``, ``nfsvers=4``, ``vers=4.1`` (its major)."""
    name = "vers" if opts.get("vers") else "nfsvers"
    value = opts.get(name)
    if not value:
        return default
    major, _, minor = value.partition(".")
    if major not in ("3", "4") or not (minor == "" or minor.isdigit()):
        raise MountError(
            f"{redact(command)!r}: {name}={value}: openbai's NFS client speaks versions 3 and 4"
        )
    return int(major)


def check_mount_command(command: str) -> None:
    """What can be told of a mount command before a node runs it: a MountError unless it is
    ``mount -t TYPE SOURCE [-o OPTIONS]`` with a source of its type's form. A type openbai
    has no client for is left to fail the job at its start (``AZFMountError``), as a node
    without that file system failed it on Batch AI."""
    fs_type, _, _ = _split(command)
    if fs_type in _NFS_TYPES or fs_type in _KNOWN_TYPES:
        parse_mount_command(command)


def _split(command: str) -> tuple[str, str, str]:
    """(type, source, options) of ``mount -t TYPE SOURCE [-o OPTIONS]``; MountError naming
    the command when it is not one."""
    try:
        words = shlex.split(command)
    except ValueError as e:
        raise MountError(f"cannot read the mount command {redact(command)!r}: {e}") from e
    if words and words[0] == "sudo":
        words = words[1:]
    fs_type, options, rest = "", "", []
    index = 1
    if not words or words[0] not in ("mount", "/bin/mount", "/usr/bin/mount", "/sbin/mount"):
        raise MountError(
            f"openbai runs only 'mount -t TYPE SOURCE' commands, not {redact(command)!r}"
        )
    while index < len(words):
        word = words[index]
        if word in ("-t", "--types") and index + 1 < len(words):
            fs_type, index = words[index + 1], index + 2
        elif word in ("-o", "--options") and index + 1 < len(words):
            options = ",".join(filter(None, (options, words[index + 1])))
            index += 2
        elif word.startswith("-"):
            index += 1
        else:
            rest.append(word)
            index += 1
    if len(rest) != 1:
        raise MountError(
            f"{redact(command)!r}: expected one source after the options (the mount point is appended)"
        )
    return fs_type, rest[0], options


def parse_mount_command(command: str) -> MountSource:
    """The source of ``mount -t TYPE SOURCE [-o OPTIONS]``; MountError naming the command."""
    fs_type, source, options = _split(command)
    opts = _options(options)
    if fs_type in _NFS_TYPES:
        host, sep, export = source.partition(":")
        if not sep or not host or not export.startswith("/"):
            raise MountError(f"{redact(command)!r}: an NFS source is HOST:/export, not {source!r}")
        return MountSource(
            "nfs",
            {
                "host": host.strip("[]"),
                "export": export,
                "version": _nfs_version(command, opts, _NFS_TYPES[fs_type]),
                "port": _number(command, opts, "port"),
                "mount_port": _number(command, opts, "mountport"),
            },
            export,
            "ro" in opts,
        )
    if fs_type in ("cifs", "smb3"):
        if not source.startswith("//"):
            raise MountError(f"{redact(command)!r}: a cifs source is //HOST/SHARE, not {source!r}")
        hostport, _, share = source[2:].partition("/")
        share, _, sub = share.partition("/")
        host, _, port = hostport.partition(":")
        user = opts.get("username") or opts.get("user") or ""
        if port and not (port.isdigit() and int(port) <= 65535):
            raise MountError(f"{redact(command)!r}: the port of {source!r} is not a port (0-65535)")
        port = str(_number(command, opts, "port") or port or "445")
        return MountSource(
            "azure",
            {
                "file_endpoint": f"{host}:{port}",
                "account_name": user,
                "account_key": opts.get("password") or opts.get("pass") or "",
                "subpath": sub,
            },
            share,
            "ro" in opts,
        )
    if fs_type == "glusterfs":
        return _gluster(command, source, opts)
    raise MountError(
        f"cannot mount {redact(command)!r}: this node's kernel has no {fs_type or 'such'} file system"
        " and openbai has no userspace client for it (nfs, cifs and glusterfs are mounted"
        " through FUSE)",
    )


def _gluster(command: str, source: str, opts: dict[str, str]) -> MountSource:
    host, sep, path = source.partition(":")
    volume, _, subdir = path.strip("/").partition("/")
    if not sep or not host or not volume:
        raise MountError(f"{redact(command)!r}: a glusterfs source is HOST:/VOLUME, not {source!r}")
    port = _number(command, opts, "server-port")
    backups = [b for b in re.split(r"[:,]", opts.get("backup-volfile-servers") or "") if b]
    return MountSource(
        "gluster",
        {
            "host": host.strip("[]"),
            "port": port,
            "backup_servers": backups,
            "read_only": "ro" in opts,
            "subpath": subdir.strip("/"),
        },
        volume,
        "ro" in opts,
    )

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

import ipaddress
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


#: the option keys whose value is a password (as :func:`_options` reads the keys)
_PASSWORD_KEYS = frozenset({"password", "pass"})  # in any case: sealed however spelt
#: the option keys whose value is a user name (``user%password`` in mount.cifs's form)
_USER_KEYS = frozenset({"username", "user"})
#: a password in a command that does not read as shell words (unbalanced quotes): such a
#: command is refused, this only keeps the password out of the message saying so
_SECRET_RAW = re.compile(r"(?i)((?:password|pass)\s*=)([^,\s]*)")
_USER_SECRET_RAW = re.compile(r"(?i)((?:username|user)\s*=[^,\s%]*%)([^,\s]*)")
#: a password sealed with the installation's key (``seal_passwords``)
SEALED = "sealed:"
#: the words of a mount command that hold its options: ``-o``/``--options`` and the next
#: word, or the options attached (``-oOPTS``, ``--options=OPTS``)
_OPTION_FLAGS = ("-o", "--options")


def _option_words(words: list[str]) -> list[tuple[int, str, str]]:
    """(index, prefix, options) of each word of ``words`` that holds options, as
    :func:`_split` reads them: ``prefix`` is what stands before the options in that word."""
    found = []
    index = 1
    while index < len(words):
        word = words[index]
        if word in ("-t", "--types") and index + 1 < len(words):
            index += 2
        elif word in _OPTION_FLAGS and index + 1 < len(words):
            found.append((index + 1, "", words[index + 1]))
            index += 2
        elif word.startswith("--options="):
            found.append((index, "--options=", word[len("--options=") :]))
            index += 1
        elif word.startswith("-o") and not word.startswith("--") and len(word) > 2:
            found.append((index, "-o", word[2:]))
            index += 1
        else:
            index += 1
    return found


def _rewrite(command: str, change: Callable[[str, str], str | None]) -> str:
    """``command`` with each option ``KEY=VALUE`` that ``change(key, value)`` (the key and
    value as :func:`_options` reads them, blanks around them stripped) answers with a new
    text for replaced by ``KEY=TEXT``: the words written again quoted as needed where one
    changed, the command as it was where none did. The options are found as the mount
    reads them (:func:`_split`), so a password the mount uses is one this changes."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    changed = list(words)
    for index, prefix, text in _option_words(words):
        items = []
        for item in text.split(","):
            key, sep, value = item.partition("=")
            new = change(key.strip(), value.strip()) if sep else None
            items.append(item if new is None else f"{key.strip()}={new}")
        changed[index] = prefix + ",".join(items)
    return command if changed == words else shlex.join(changed)


def redact(command: str) -> str:
    """The command with its password left out, for logs and error messages."""

    def hidden(key: str, value: str) -> str | None:
        if key.lower() in _PASSWORD_KEYS:
            return "***"
        if key.lower() in _USER_KEYS and "%" in value:
            return value.partition("%")[0] + "%***"
        return None

    try:
        shlex.split(command)
    except ValueError:
        command = _SECRET_RAW.sub(lambda m: m[1] + "***", command)
        return _USER_SECRET_RAW.sub(lambda m: m[1] + "***", command)
    return _rewrite(command, hidden)


def seal_passwords(command: str, seal: Callable[[str], str]) -> str:
    """The command with each password replaced by ``sealed:TOKEN`` (``seal(password)``), as it
    is stored and shown: a job's spec, its volumes' names and download links then hold no
    password, only a token the installation alone can open.

    For a command as the user gave it (a job's or cluster's create, once): a password that
    already reads ``sealed:...`` is sealed again like any other, so that it opens to that
    text and not to the password another job's token stands for (a token is shown with the
    job that holds it)."""

    def sealed(key: str, value: str) -> str | None:
        if key.lower() not in _PASSWORD_KEYS or not value:
            return None
        return SEALED + seal(value)

    return _rewrite(command, sealed)


def unseal_passwords(command: str, unseal: Callable[[str], str]) -> str:
    """The command as the user meant it (``unseal(token)`` gives a password back)."""

    def opened(key: str, value: str) -> str | None:
        if key.lower() not in _PASSWORD_KEYS or not value.startswith(SEALED):
            return None
        return unseal(value[len(SEALED) :])

    return _rewrite(command, opened)


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
    fs_type, _, options = _split(command)
    _refuse_user_password(command, _options(options))
    if fs_type in _NFS_TYPES or fs_type in _KNOWN_TYPES:
        parse_mount_command(command)


def _refuse_user_password(command: str, opts: dict[str, str]) -> None:
    """A MountError for mount.cifs's ``username=USER%PASSWORD``: give ``password=``, which is
    sealed (a password in the user name would be stored and shown)."""
    for key in _USER_KEYS:
        if "%" in opts.get(key, ""):
            raise MountError(
                f"{redact(command)!r}: {key}=USER%PASSWORD is not read; give the password as"
                " password=PASSWORD (it is then sealed, never shown)"
            )


#: one label of a host name (RFC 1123): letters, digits and inner hyphens
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def valid_host(host: str) -> bool:
    """Whether ``host`` is a plain host name (RFC 1123 labels), an IPv4 address or an IPv6
    address, bracketed (``[::1]``) or not: nothing a URL or a client's own syntax reads
    more into (``/``, ``?``, ``&``, ``#``, ``@``, ``%``, blanks)."""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return False
        return "%" not in host
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return False
        return "%" not in host
    if not host or len(host) > 253:
        return False
    return all(_LABEL.fullmatch(label) for label in host.split("."))


def _host(command: str, host: str, source: str) -> str:
    """``host`` of ``source`` when it is a plain host name, an IPv4 address or a bracketed
    IPv6 address; a MountError naming it when it is not (it would be read as more than a
    host: ``h/x?nfsport=P`` is a libnfs URL)."""
    if not valid_host(host) or (":" in host and not host.startswith("[")):
        raise MountError(
            f"{redact(command)!r}: {host!r} in {source!r} is not a host name, an IPv4 address"
            " or a bracketed IPv6 address ([::1])"
        )
    return host


def _host_and_rest(source: str) -> tuple[str, str, str]:
    """(host, separator, rest) of ``HOST:REST``, a bracketed IPv6 host kept whole."""
    if source.startswith("["):
        end = source.find("]")
        if end > 0:
            host, rest = source[: end + 1], source[end + 1 :]
            return host, rest[:1] if rest.startswith(":") else "", rest[1:]
    return source.partition(":")


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
        elif word in _OPTION_FLAGS and index + 1 < len(words):
            options = ",".join(filter(None, (options, words[index + 1])))
            index += 2
        elif word.startswith("--options=") or (
            word.startswith("-o") and not word.startswith("--") and len(word) > 2
        ):  # the options attached: read as _option_words reads them (sealing, redacting)
            attached = word[len("--options=") :] if word.startswith("--") else word[2:]
            options = ",".join(filter(None, (options, attached)))
            index += 1
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
    _refuse_user_password(command, opts)
    if fs_type in _NFS_TYPES:
        host, sep, export = _host_and_rest(source)
        if not sep or not host or not export.startswith("/"):
            raise MountError(f"{redact(command)!r}: an NFS source is HOST:/export, not {source!r}")
        host = _host(command, host, source)
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
        host, _, port = _host_and_rest(hostport)
        host = _host(command, host, source)
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
    host, sep, path = _host_and_rest(source)
    volume, _, subdir = path.strip("/").partition("/")
    if not sep or not host or not volume:
        raise MountError(f"{redact(command)!r}: a glusterfs source is HOST:/VOLUME, not {source!r}")
    host = _host(command, host, source)
    port = _number(command, opts, "server-port")
    backups = [b for b in re.split(r"[:,]", opts.get("backup-volfile-servers") or "") if b]
    for backup in backups:
        _host(command, backup, "backup-volfile-servers")
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

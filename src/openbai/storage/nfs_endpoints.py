"""Whether an NFS source names one of the installation's own file servers.

openbai makes an unmanaged mount (``mount -t nfs HOST:/export``) itself, as root, from a
reserved port, which is what its file servers believe (``PrivilegedPort``): such a mount of
a file server would reach it past the workspace check a ``fileServers`` mount gets. So an
unmanaged NFS mount may not name a file server's address together with one of its ports, nor
leave a port to rpcbind there (where a file server's programs are registered)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from openbai.errors import MountError
from openbai.storage.nfs_command import valid_host
from openbai.storage.nfs_server import NfsServer


def addresses(host: str) -> set[str]:
    """The IP addresses a connection to ``host`` goes to; the unspecified address (0.0.0.0,
    ::) is this machine's loopback, and an IPv4-mapped one its IPv4 address.

    A MountError for a ``host`` that is no plain host name or address (``h/x?nfsport=P``):
    whether it reaches a file server cannot be told, so it is refused. A well-formed host
    that does not resolve is left (no address here): no client can connect to it either."""
    if not valid_host(host):
        raise MountError(f"{host!r} is not a host name, an IPv4 or an IPv6 address")
    try:
        infos = socket.getaddrinfo(host.strip("[]"), None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return set()
    found = set()
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_unspecified:
            ip = ipaddress.ip_address("127.0.0.1" if ip.version == 4 else "::1")
        found.add(str(ip))
    return found


def file_server_named(home: Path, host: str, ports: set[int]) -> str | None:
    """``RG/WS/NAME`` of the file server an NFS mount of ``host`` on ``ports`` (0: a port left
    to rpcbind) would reach; None when it reaches none."""
    targets = addresses(host)
    if not targets:
        return None
    for state_file in sorted((home / "file-servers").glob("*/*/*/server.json")):
        state = NfsServer(state_file.parent).state()
        if state is None or not (addresses(state.host) & targets):
            continue
        if ports & {0, state.port, state.mount_port}:
            return "/".join(state_file.parent.parts[-3:])
    return None


def file_server_reached(home: Path, options: Mapping[str, Any]) -> str | None:
    """:func:`file_server_named` for an NFS mount's options (host, version, port,
    mount_port): NFSv4 speaks to its one port, NFSv3 to its MOUNT port too."""
    ports = {options["port"]}
    if options["version"] != 4:
        ports.add(options["mount_port"])
    return file_server_named(home, options["host"], ports)


def refusal(options: Mapping[str, Any], server: str) -> str:
    return (
        f"{options['host']} is the address of file server {server} of this installation, whose"
        " ports it names or leaves to rpcbind; mount a file server through fileServers (or"
        " --nfs), or name your own NFS server's port"
    )

"""The server's own address in the links it hands out: ``nextLink``, download links and
long-running operation URLs, which clients (the SDK included) follow as given.

The address is never the request's ``Host`` header alone, which any client can set: a
forged header would make the server hand out links to another host, and a client that
follows them would send its bearer token there. It is the configured public URL
(``bai serve --public-url``, for a server behind a proxy), or else the address the request
really reached (the listening socket's), written with the ``Host`` header's name only when
that name is this machine's own (``localhost`` for a loopback address, its host name).
"""

from __future__ import annotations

import ipaddress
import socket
from functools import lru_cache
from urllib.parse import urlsplit

from fastapi import Request

from openbai.errors import SpecError

_DEFAULT_PORTS = {"http": 80, "https": 443}


def check_public_url(url: str) -> str:
    """A configured public URL: ``http(s)://host[:port][/prefix]``, without query or fragment."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or parts.query
        or parts.fragment
        or parts.username
    ):
        raise SpecError(
            f"--public-url: give http(s)://host[:port][/prefix], got {url!r}", target="--public-url"
        )
    return url.rstrip("/")


def base_url(request: Request) -> str:
    """``scheme://host[:port]`` (plus a configured prefix) for links to this server."""
    configured: str | None = getattr(request.app.state, "public_url", None)
    if configured:
        return configured
    scheme = request.url.scheme
    server = request.scope.get("server")
    if server is None:  # not a socket (some test transports): nothing better to go by
        return f"{scheme}://{request.url.netloc}"
    host, port = str(server[0]), int(server[1])
    named = _host_header_name(request.headers.get("host", ""), port, scheme)
    if named is not None and named in _own_names(host):
        host = named
    return f"{scheme}://{_netloc(host, port, scheme)}"


def _host_header_name(header: str, port: int, scheme: str) -> str | None:
    """The host name of a ``Host`` header that names the port the request came in on."""
    try:
        parts = urlsplit("//" + header)
        given = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None
    if not parts.hostname or given != port:
        return None
    return parts.hostname.lower()


def _own_names(address: str) -> set[str]:
    names = {address.lower(), _hostname()}
    try:
        if ipaddress.ip_address(address).is_loopback:
            names.add("localhost")
    except ValueError:
        pass  # a name, not an address (a test transport's "testserver")
    return names


@lru_cache(maxsize=1)
def _hostname() -> str:
    return socket.gethostname().lower()


def _netloc(host: str, port: int, scheme: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if _DEFAULT_PORTS.get(scheme) == port else f"{shown}:{port}"

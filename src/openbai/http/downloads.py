"""The headers a user's file is sent with, so that nothing in it runs on openbai's origin.

A job writes what it likes: a ``report.html`` or an ``.svg`` with a script in it, opened
from a download link by a logged-in user, would run with the explorer's origin (its
cookies, its CSRF tokens). So every file goes out with:

- ``Content-Disposition: attachment`` — the browser saves it instead of showing it — except
  types that cannot run anything (plain text, raster images), which are shown inline;
- ``Content-Security-Policy: sandbox`` — should a browser render it anyway, it is a page of
  a unique opaque origin without scripts, forms or plugins;
- ``X-Content-Type-Options: nosniff`` — the type sent is the type used: text stays text.
"""

from __future__ import annotations

import mimetypes
import re
from urllib.parse import quote

#: types a browser shows without running anything in them
INLINE_TYPES = frozenset({"text/plain", "image/png", "image/jpeg", "image/gif", "image/webp"})
SANDBOX = "sandbox"


def content_disposition(name: str, *, inline: bool = False) -> str:
    """``attachment`` (or ``inline``) with an ASCII fallback name and the exact name
    (RFC 6266/5987): control characters never reach the header."""
    fallback = re.sub(r"[^A-Za-z0-9._ -]", "_", name) or "download"
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def media_type(name: str) -> str:
    """The type a file's name suggests (``application/octet-stream`` when it says none)."""
    return mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"


def download_headers(name: str) -> tuple[str, dict[str, str]]:
    """The media type and the headers that keep the file ``name`` from running anything."""
    media = media_type(name)
    inline = media in INLINE_TYPES
    if media.startswith("text/"):
        media += "; charset=utf-8"
    return media, {
        "Content-Disposition": content_disposition(name, inline=inline),
        "Content-Security-Policy": SANDBOX,
        "X-Content-Type-Options": "nosniff",
    }

"""Signed download links: what an Azure SAS URL was to Batch AI's ``downloadUrl``.

A link names one file of one volume and an expiry time, and carries an HMAC-SHA256 of both
under the server's key (``$OPENBAI_HOME/api.key``, 32 random bytes, mode 0600, made on
first use). Anyone holding the link can fetch the file with a plain GET until it expires;
a link whose file, volume or expiry was changed fails the check.

The account and the volume are one path segment each. A storage account's name and its
containers' and shares' are (letters, digits, ``-``), but a file server's account and
volume (``fileserver:RG/WS/NAME``, ``/mnt/data``) and an unmanaged file system's (its mount
command, its export) hold slashes, which no percent-encoding keeps out of the router's way
(it matches the decoded path): those travel as ``~`` and their base64url.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from openbai.errors import PermissionDeniedError
from openbai.files import create_once

KEY_FILE = "api.key"


@dataclass(frozen=True)
class SignedFile:
    """One file of a volume: what a link grants."""

    account: str
    volume_kind: str
    volume: str
    path: str

    def message(self, expires: int) -> bytes:
        return "\n".join(
            (self.account, self.volume_kind, self.volume, self.path, str(expires))
        ).encode()

    def url_path(self) -> str:
        parts = (segment(self.account), self.volume_kind, segment(self.volume))
        return "/openbai/download/" + "/".join((*parts, quote(self.path, safe="/")))


_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_ENCODED = "~"


def segment(value: str) -> str:
    """``value`` as one path segment of a link: itself where it is a plain name."""
    if _PLAIN_SEGMENT.fullmatch(value):
        return value
    return _ENCODED + base64.urlsafe_b64encode(value.encode()).rstrip(b"=").decode()


def from_segment(text: str) -> str:
    """What :func:`segment` made ``text`` of; PermissionDeniedError for an encoding no link
    has (the link was changed)."""
    if not text.startswith(_ENCODED):
        return text
    encoded = text[len(_ENCODED) :]
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise PermissionDeniedError(
            "the download link was changed", code="AuthenticationFailed"
        ) from None


class UrlSigner:
    def __init__(self, home: Path):
        self._key_file = home / KEY_FILE
        self._key: bytes | None = None

    def _secret(self) -> bytes:
        if self._key is None:
            self._key = _read_or_create_key(self._key_file)
        return self._key

    def signature(self, target: SignedFile, expires: int) -> str:
        digest = hmac.digest(self._secret(), target.message(expires), hashlib.sha256)
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def link(self, base_url: str, target: SignedFile, *, minutes: int) -> str:
        """An absolute URL valid for ``minutes`` from now."""
        expires = int(time.time()) + minutes * 60
        sig = self.signature(target, expires)
        return f"{base_url.rstrip('/')}{target.url_path()}?se={expires}&sig={sig}"

    def check(self, target: SignedFile, expires: int, signature: str) -> None:
        """Raise ``PermissionDeniedError`` unless the link is genuine and not expired."""
        expected = self.signature(target, expires).encode()
        if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
            raise PermissionDeniedError(
                "the download link's signature does not match", code="AuthenticationFailed"
            )
        if expires < time.time():
            raise PermissionDeniedError(
                "the download link has expired; list the files again for a new one",
                code="AuthenticationFailed",
            )


def _read_or_create_key(path: Path) -> bytes:
    return create_once(path, lambda: secrets.token_bytes(32))

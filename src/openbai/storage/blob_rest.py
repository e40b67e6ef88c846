"""Blob REST uploads on plain keep-alive HTTP connections: the bulk-upload path of azure_blob.

The Azure SDK spends 2-3 ms of CPU per request (pipeline policies, serialisation, requests);
a tree of 10,000 small files then costs 25 s of client CPU, more than the store needs to
take them on a small machine. These calls spend ~0.3 ms each: one ``http.client``
connection per thread, authorised by a SAS in the query string (no per-request signing).

- ``put_blob`` stores a whole block blob in one request, ``put_block`` / ``put_block_list``
  stage and commit blocks, ``get_blob`` / ``get_range`` fetch (a range of) a blob,
  ``get_range_into`` receives a range straight into the caller's buffer (a reused buffer is
  not new memory the kernel has to fault in and zero: ~10% of a mount's CPU). ``put_blob`` sends
  ``Content-MD5`` so the service checks the bytes it got (the hash is made anyway: it is
  stored as the blob's content MD5, as the SDK's ``content_settings`` would); a block sends
  one only when asked (az's ``--validate-content``, which is off by default too): hashing
  every block a second time takes CPU a big upload needs, for what TCP's and TLS's own
  checks already cover on the way.
- Requests are retried like the SDK's ``ExponentialRetry``: on connection errors, timeouts
  and 408/429/5xx, after 1, 2, 4, 8 ... s (with jitter), ``retry_total`` times. Every call
  here is idempotent (the same bytes to the same name), so a retry is always safe.
- Errors are openbai storage errors: 404 ``NotFoundError``, 403 ``PermissionDeniedError``,
  409 ``ConflictError``, 5xx or no answer after the retries ``BackendUnavailableError``.

The SAS comes from a callable so the backend can renew it; no SDK is imported here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import itertools
import os
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote, urlencode, urlsplit

from openbai.errors import (
    BackendUnavailableError,
    ConflictError,
    NotFoundError,
    OpenBaiError,
    PermissionDeniedError,
    SpecError,
    StorageError,
)
from openbai.retry import retrying

#: a REST version every current Azure region and Azurite 3 accept
API_VERSION = "2021-08-06"
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_Connection = http.client.HTTPConnection


@dataclass(frozen=True)
class FileRange:
    """``length`` bytes of the open file ``fd`` from ``offset``, as a request body: the kernel
    sends them from the page cache (``sendfile``), no copy through Python. Reading a big
    file into buffers was half of a big upload's CPU (perf: ``_copy_to_iter``)."""

    fd: int
    offset: int
    length: int

    def __len__(self) -> int:
        return self.length


#: a request body: sent as it is (a block read into a reused buffer is a memoryview)
Body = bytes | bytearray | memoryview | FileRange


@dataclass(frozen=True)
class ListedBlob:
    """A blob as List Blobs names it."""

    name: str
    size: int
    last_modified: datetime | None
    content_md5: bytes | None
    metadata: dict[str, str]


def account_sas(account: str, key: str, start: datetime, expiry: datetime) -> str:
    """An account SAS (query string) for the blob service: read, write, list and create
    containers' blobs (``srt=co``), signed with the account key as the REST reference says
    (version 2020-12-06 and later). Made here, not by azure-storage-blob, so that a tree
    transfer does not import the SDK (a fifth of a second of the command's start)."""
    when = "%Y-%m-%dT%H:%M:%SZ"
    fields = {"sv": API_VERSION, "ss": "b", "srt": "co", "sp": "rwlc",
              "st": start.strftime(when), "se": expiry.strftime(when), "spr": "https,http"}  # fmt: skip
    signed = "\n".join([account, fields["sp"], fields["ss"], fields["srt"], fields["st"],
                        fields["se"], "", fields["spr"], fields["sv"], "", ""])  # fmt: skip
    mac = hmac.new(base64.b64decode(key), signed.encode(), hashlib.sha256)
    return urlencode({**fields, "sig": base64.b64encode(mac.digest()).decode()})


class BlobRestClient:
    """Uploads to the containers under one blob endpoint (``https://acct.blob.core...``)."""

    def __init__(
        self,
        endpoint: str,
        sas: Callable[[], str],
        *,
        retry_total: int = 4,
        timeout: float = 60.0,
    ):
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SpecError(f"not a blob endpoint URL: {endpoint!r}", target="blob_endpoint")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")  # Azurite: /devstoreaccount1
        self._sas = sas
        self._retry_total = retry_total
        self._timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[_Connection] = []

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()

    # -- operations ------------------------------------------------------------------------
    def put_blob(
        self, container: str, name: str, data: bytes, *, md5: bytes, content_type: str
    ) -> datetime | None:
        """Store ``data`` as the block blob ``name``; its Last-Modified time."""
        digest = base64.b64encode(md5).decode()
        headers = {
            "x-ms-blob-type": "BlockBlob",
            "Content-MD5": digest,
            "x-ms-blob-content-md5": digest,
            "x-ms-blob-content-type": content_type,
        }
        response = self._request("PUT", container, name, "", data, headers)
        return _last_modified(response)

    def put_block(
        self, container: str, name: str, block_id: str, data: Body, *, validate: bool = False
    ) -> None:
        """Stage one block (``block_id`` as the SDK takes it: encoded here); with ``validate``
        its MD5 goes along for the store to check."""
        encoded = quote(base64.b64encode(block_id.encode()).decode(), safe="")
        headers = {}
        if validate:
            if isinstance(data, FileRange):
                raise ValueError("a block to validate is sent from memory: its MD5 is made of it")
            headers["Content-MD5"] = base64.b64encode(_md5(data)).decode()
        self._request("PUT", container, name, f"comp=block&blockid={encoded}", data, headers)

    def put_block_list(
        self,
        container: str,
        name: str,
        block_ids: list[str],
        *,
        md5: bytes | None,
        content_type: str,
        metadata: dict[str, str] | None = None,
    ) -> datetime | None:
        """Commit the staged blocks as the blob's content (its content MD5 stored when given,
        and ``metadata``); its Last-Modified time."""
        latest = "".join(
            f"<Latest>{base64.b64encode(block_id.encode()).decode()}</Latest>"
            for block_id in block_ids
        )
        body = f'<?xml version="1.0" encoding="utf-8"?><BlockList>{latest}</BlockList>'.encode()
        headers = {
            "Content-Type": "application/xml",
            "x-ms-blob-content-type": content_type,
            **{f"x-ms-meta-{key}": value for key, value in (metadata or {}).items()},
        }
        if md5 is not None:
            headers["x-ms-blob-content-md5"] = base64.b64encode(md5).decode()
        response = self._request("PUT", container, name, "comp=blocklist", body, headers)
        return _last_modified(response)

    def get_blob(
        self, container: str, name: str, *, length: int, offset: int = 0
    ) -> tuple[bytes, int]:
        """``length`` bytes of a blob from ``offset`` (fewer at its end), and its size."""
        data, size, _ = self.get_range(container, name, length=length, offset=offset)
        return data, size

    def get_range(
        self, container: str, name: str, *, length: int, offset: int = 0, etag: str | None = None
    ) -> tuple[bytes, int, str | None]:
        """As :meth:`get_blob`, and the blob's ETag; with ``etag``, only from that version of
        the blob (another raises ``StorageError``: HTTP 412), so that the ranges of one
        download are all of the same blob."""
        headers = {"x-ms-range": f"bytes={offset}-{offset + length - 1}"}
        if etag is not None:
            headers["If-Match"] = etag
        try:
            response, body = self._request_body("GET", container, name, "", b"", headers)
        except _RangeNotSatisfiable:
            return b"", 0, None  # only an empty blob has no byte 0
        data = bytes(body)  # already bytes: no copy
        content_range = response.getheader("Content-Range")  # bytes 0-99/1234
        size = int(content_range.rsplit("/", 1)[1]) if content_range else len(data)
        return data, size, response.getheader("ETag")

    def get_range_into(
        self,
        container: str,
        name: str,
        into: memoryview,
        *,
        offset: int = 0,
        etag: str | None = None,
    ) -> tuple[int, int, str | None]:
        """As :meth:`get_range` of ``len(into)`` bytes, received into ``into``: how many bytes
        came (fewer at the blob's end), the blob's size and its ETag."""
        headers = {"x-ms-range": f"bytes={offset}-{offset + len(into) - 1}"}
        if etag is not None:
            headers["If-Match"] = etag
        try:
            response, got = self._request_body("GET", container, name, "", b"", headers, into)
        except _RangeNotSatisfiable:
            return 0, 0, None
        content_range = response.getheader("Content-Range")
        size = int(content_range.rsplit("/", 1)[1]) if content_range else len(got)
        return len(got), size, response.getheader("ETag")

    def container_modified(self, container: str) -> datetime | None:
        """The container's Last-Modified time; ``NotFoundError`` if there is none."""
        return _last_modified(self._request("GET", container, "", "restype=container", b"", {}))

    def list_blobs(
        self, container: str, prefix: str = "", *, page_size: int | None = None
    ) -> Iterator[ListedBlob]:
        """Every blob whose name starts with ``prefix``, with its metadata, page by page
        (``page_size`` names a page at most; the store's default is 5,000)."""
        from xml.etree import ElementTree  # only listings need it

        marker = ""
        while True:
            query = {"restype": "container", "comp": "list", "include": "metadata",
                     "prefix": prefix, "marker": marker, "maxresults": str(page_size or "")}  # fmt: skip
            _, body = self._request_body(
                "GET", container, "", urlencode({k: v for k, v in query.items() if v}), b"", {}
            )
            root = ElementTree.fromstring(bytes(body))
            for blob in root.iterfind("Blobs/Blob"):
                name_element = blob.find("Name")
                name = (name_element.text or "") if name_element is not None else ""
                if name_element is not None and name_element.get("Encoded") == "true":
                    name = unquote(name)
                properties = {p.tag: p.text or "" for p in blob.iterfind("Properties/*")}
                modified = properties.get("Last-Modified")
                md5 = properties.get("Content-MD5")
                yield ListedBlob(
                    name=name,
                    size=int(properties.get("Content-Length") or 0),
                    last_modified=parsedate_to_datetime(modified) if modified else None,
                    content_md5=base64.b64decode(md5) if md5 else None,
                    metadata={m.tag: m.text or "" for m in blob.iterfind("Metadata/*")},
                )
            marker = root.findtext("NextMarker") or ""
            if not marker:
                return

    # -- requests --------------------------------------------------------------------------
    def _request(
        self,
        method: str,
        container: str,
        name: str,
        query: str,
        body: Body,
        headers: dict[str, str],
    ) -> http.client.HTTPResponse:
        return self._request_body(method, container, name, query, body, headers)[0]

    def _request_body(
        self,
        method: str,
        container: str,
        name: str,
        query: str,
        body: Body,
        headers: dict[str, str],
        into: memoryview | None = None,
    ) -> tuple[http.client.HTTPResponse, bytes | memoryview]:
        """The response and its body (with ``into``: the part of ``into`` it filled);
        retried as the module docstring says."""
        headers = {**headers, "x-ms-version": API_VERSION, "Content-Length": str(len(body))}
        tries = itertools.count()

        def exchange() -> tuple[http.client.HTTPResponse, bytes | memoryview]:
            first = next(tries) == 0
            return self._exchange(method, container, name, query, body, headers, into, first=first)

        # 1, 2, 4, 8 ... s, +-0.5 s: the SDK's ExponentialRetry(initial_backoff=1)
        policy = retrying(
            retry_on=_Transient, attempts=self._retry_total + 1, first_wait=1.0, jitter=0.5
        )
        try:
            return policy(exchange)
        except _Transient as e:
            raise e.error from e.__cause__

    def _exchange(
        self,
        method: str,
        container: str,
        name: str,
        query: str,
        body: Body,
        headers: dict[str, str],
        into: memoryview | None,
        *,
        first: bool,
    ) -> tuple[http.client.HTTPResponse, bytes | memoryview]:
        """One try of a request; :class:`_Transient` for a failure worth another."""
        where = f"{container}/{name}"
        while True:
            path = f"{self._prefix}/{container}" + (f"/{quote(name, safe='/~')}?" if name else "?")
            path += "&".join(q for q in (query, self._sas()) if q)
            connection, reused = self._connection()
            try:
                if isinstance(body, FileRange):
                    connection.request(method, path, None, headers)  # headers only
                    if _send_range(connection, body) < body.length:
                        self._drop(connection)
                        raise StorageError(
                            f"{where}: the file got shorter while sent", target=where
                        )
                else:
                    connection.request(method, path, body, headers)
                response = connection.getresponse()
                data = (
                    _read_into(response, into)
                    if into is not None and response.status < 300
                    else response.read()
                )
            except (OSError, http.client.HTTPException) as e:
                self._drop(connection)
                if reused and first:
                    first = False  # the server closed an idle keep-alive connection
                    continue
                unreachable = BackendUnavailableError(
                    f"{where}: blob service unreachable ({e})", target=where
                )
                raise _Transient(unreachable) from e
            if response.status < 300:
                return response, data
            if response.status == 416:
                raise _RangeNotSatisfiable(where)
            if response.status not in _RETRY_STATUS:
                raise _error(response, where)
            if response.will_close:
                self._drop(connection)
            raise _Transient(_error(response, where))

    def _connection(self) -> tuple[_Connection, bool]:
        """This thread's connection, and whether it was used before."""
        connection: _Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            return connection, True
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = kind(self._host, self._port, timeout=self._timeout)
        self._local.connection = connection
        with self._lock:
            self._connections.append(connection)
        return connection, False

    def _drop(self, connection: _Connection) -> None:
        connection.close()
        self._local.connection = None
        with self._lock:
            if connection in self._connections:
                self._connections.remove(connection)


class _RangeNotSatisfiable(Exception):
    """HTTP 416: a range starting past the end (of an empty blob)."""


class _Transient(Exception):
    """A failure worth another try; ``error`` is raised once the tries are spent."""

    def __init__(self, error: OpenBaiError):
        super().__init__(error.message)
        self.error = error


def _send_range(connection: _Connection, body: FileRange) -> int:
    """Send ``body`` on the connection whose request headers went out; the bytes sent (fewer
    when the file ended first)."""
    sock = connection.sock
    if isinstance(sock, ssl.SSLSocket):  # TLS encrypts in user space: the bytes pass anyway
        sent = 0
        while sent < body.length:
            chunk = os.pread(body.fd, min(body.length - sent, 1 << 20), body.offset + sent)
            if not chunk:
                break
            sock.sendall(chunk)
            sent += len(chunk)
        return sent
    return int(sock.sendfile(_PositionedFile(body.fd), body.offset, body.length))


class _PositionedFile:
    """An open file as ``socket.sendfile`` takes it, with a position of its own: blocks of one
    file are sent by several threads at once (read and seek are its fallback where the
    kernel's sendfile refuses the file)."""

    def __init__(self, fd: int):
        self._fd = fd
        self._position = 0

    def fileno(self) -> int:
        return self._fd

    def seek(self, position: int) -> int:
        self._position = position
        return position

    def read(self, size: int) -> bytes:
        data = os.pread(self._fd, size, self._position)
        self._position += len(data)
        return data


def _read_into(response: http.client.HTTPResponse, into: memoryview) -> memoryview:
    """Receive a response body into ``into``; the part of it filled. A body longer than
    ``into`` is an answer to another question: an error, not bytes dropped."""
    got = 0
    while got < len(into):
        n = response.readinto(into[got:])
        if not n:
            break
        got += n
    if response.length:  # more than asked for (http.client knows the body's length)
        raise http.client.HTTPException(f"{response.length} bytes more than the range asked")
    return into[:got]


def _md5(data: bytes | bytearray | memoryview) -> bytes:
    return hashlib.md5(data, usedforsecurity=False).digest()


def _last_modified(response: http.client.HTTPResponse) -> datetime | None:
    value = response.getheader("Last-Modified")
    return parsedate_to_datetime(value) if value else None


def _error(response: http.client.HTTPResponse, where: str) -> OpenBaiError:
    code = response.getheader("x-ms-error-code") or response.reason
    status = response.status
    message = f"{where}: HTTP {status} {code}"
    if status == 404:
        return NotFoundError(f"{where}: not found ({code})", target=where)
    if status == 409:
        return ConflictError(message, target=where)
    if status == 403:
        return PermissionDeniedError(message, target=where)
    if status >= 500:
        return BackendUnavailableError(message, target=where)
    return StorageError(message, target=where)

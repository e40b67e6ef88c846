"""Azure Blob Storage backend: the blob containers of an Azure (or Azurite) storage account.

Options: ``{"connection_string": ...}``, or ``{"account_key": ..., "blob_endpoint": ...}``
(``account_name`` defaults to the account's name, ``blob_endpoint`` to Azure's public one).
Optional: ``max_concurrency`` (parallel blocks/ranges of one file, default 8),
``retry_total`` (default 4: with exponential backoff a call rides out ~15 s of outage) and
``cache_dir`` (where files written in place keep their bytes until stored; default: the
system's temporary directory) and ``md5_up_to`` (files written in place get their Content-MD5
while they are written sequentially and no bigger than this many bytes; default: any size).

- Containers are volumes. Directories are virtual: a prefix that has blobs under it is a
  directory, ``make_dir`` only checks the container, deleting a directory deletes every
  blob under its prefix.
- ``upload`` writes a block blob: one Put Blob up to 8 MiB, with its content MD5; above
  that 8 MiB blocks staged in parallel while the file is read. A big file is hashed (its
  MD5 stored, each block sent with its own for the store to check) only with
  ``validate_content`` (az's ``--validate-content``); otherwise its source's mtime goes in
  the blob's metadata and is the blob's ``modified``, as on an embedded account. Either way
  tree transfers can skip unchanged files (same size and MD5, or same size and mtime). ``download`` fetches a small blob in one GET, a big one
  in parallel 8 MiB ranges (the same version of it: If-Match its ETag). Both go through the lean HTTP client of ``blob_rest.py`` (authorised
  by an account SAS made from the key): the SDK's per-request CPU would cap a tree of small
  files below what the store can take. Everything else uses the SDK.
- ``open_writer`` writes a blob in place as a block blob (``block_writer.py``): full blocks
  are staged in parallel while the file is written, ``flush`` commits the block list.
  ``rename`` is a server-side copy followed by a delete: readers of the target see the old
  blob or the whole new one, never a part.
- The client is built on first use: constructing the backend does no I/O.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import mimetypes
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from io import BufferedReader
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from openbai.errors import (
    NotFoundError,
    SpecError,
    StorageError,
)
from openbai.storage.atomic import atomic_target
from openbai.storage.azure_errors import sdk_error
from openbai.storage.base import (
    FileInfo,
    FileWriter,
    StorageBackend,
    VolumeInfo,
    VolumeKind,
    blob_path,
)
from openbai.storage.blob_rest import BlobRestClient, FileRange, ListedBlob, account_sas
from openbai.storage.block_writer import ID_LENGTH, BlockFileWriter, BlockTarget
from openbai.storage.names import check_volume_name

if TYPE_CHECKING:
    # azure-storage-blob is imported where it is used: a tree transfer (blob_rest.py only)
    # never imports it, which was a fifth of a second of the command's start
    from azure.storage.blob import (
        BlobClient,
        BlobPrefix,
        BlobProperties,
        BlobServiceClient,
        ContainerClient,
    )

_MiB = 1024 * 1024
_CLIENT_SIZES = {
    "max_single_put_size": 16 * _MiB,
    "max_block_size": 8 * _MiB,
    "max_single_get_size": 32 * _MiB,
    "max_chunk_get_size": 16 * _MiB,
}
_DELETE_BATCH = 256
#: ranged reads up to this size are one lean GET (blob_rest.py)
_RANGE_GET_MAX = 32 * _MiB
#: metadata of a big blob uploaded without an MD5: its source's mtime (ns since the epoch)
MTIME_METADATA = "openbai_mtime_ns"
#: uploads: files up to this size go in one Put Blob, bigger ones in blocks of it
_BLOCK_SIZE = 8 * _MiB
#: a user-delegated SAS would do too; we make account SASes from the key, valid this long
_SAS_LIFETIME = timedelta(hours=8)


@contextlib.contextmanager
def _translate(where: str) -> Iterator[None]:
    """Turn Azure SDK (and local file) exceptions into openbai storage errors."""
    try:
        yield
    except FileNotFoundError as e:
        raise NotFoundError(f"{e.filename}: no such file", target=where) from e
    except OSError as e:
        raise StorageError(f"{e.filename or where}: {e.strerror or e}", target=where) from e
    except Exception as e:
        if "azure.core.exceptions" not in sys.modules:  # then no SDK call raised it
            raise
        error = sdk_error(e, where, service="blob")
        if error is e:
            raise
        raise error from e


def _check_endpoint(endpoint: str, field: str) -> None:
    """A blob endpoint: an http(s) URL with a host and a valid port, and no query (a SAS in
    it would be shown back with the account)."""
    try:
        url = urlsplit(endpoint)
        url.port  # noqa: B018 (it raises for a port out of range)
    except ValueError:
        raise SpecError(
            f"{field}: the blob endpoint is not a URL with a valid port", target=field
        ) from None
    if url.query or url.fragment:
        raise SpecError(
            f"{field}: the blob endpoint takes no query; a SAS goes in the connection string"
            " (SharedAccessSignature=...)",
            target=field,
        )
    if url.scheme not in ("http", "https") or not url.hostname:
        raise SpecError(
            f"{field}: the blob endpoint is an http(s) URL such as"
            " https://ACCOUNT.blob.core.windows.net",
            target=field,
        )


def _connection_settings(connection_string: str) -> dict[str, str]:
    """``Key=value;...`` of a connection string, keys lowercased (values may hold ``=``)."""
    pairs = (part.split("=", 1) for part in connection_string.split(";") if "=" in part)
    return {key.strip().lower(): value.strip() for key, value in pairs}


def _blob_info(props: BlobProperties) -> FileInfo:
    md5 = props.content_settings.content_md5
    return FileInfo(
        path=str(props.name),
        is_dir=False,
        size=int(props.size),
        modified=_source_mtime(props.metadata) or props.last_modified,
        md5=bytes(md5).hex() if md5 else None,
    )


def _all_done(futures: list[Future[Any]]) -> None:
    """Wait for every one of ``futures``; the first error is raised once none runs any more
    (the ones not started are cancelled), so no task touches a file or buffer after this."""
    try:
        for future in futures:
            future.result()
    finally:
        for future in futures:
            future.cancel()
        wait(futures)


def _listed_info(listed: ListedBlob) -> FileInfo:
    """As :func:`_blob_info`, of a blob named by blob_rest's listing."""
    return FileInfo(
        path=listed.name,
        is_dir=False,
        size=listed.size,
        modified=_source_mtime(listed.metadata) or listed.last_modified,
        md5=listed.content_md5.hex() if listed.content_md5 else None,
    )


def _source_mtime(metadata: dict[str, str] | None) -> datetime | None:
    """The modification time of the file a big blob was uploaded from (kept in its metadata
    when no MD5 was made, as ``upload`` keeps it on embedded accounts), to the microsecond."""
    value = (metadata or {}).get(MTIME_METADATA)
    if value is None or not value.isdigit():
        return None
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(value) // 1000)


class AzureBlobStorage(StorageBackend):
    """The blob containers of one Azure storage account."""

    name: ClassVar[str] = "azure_blob"
    shows_appends_live: ClassVar[bool] = False

    def __init__(
        self,
        account: str,
        *,
        connection_string: str | None = None,
        account_key: str | None = None,
        blob_endpoint: str | None = None,
        max_concurrency: int = 8,
        retry_total: int = 4,
        cache_dir: Path | None = None,
        md5_up_to: int | None = None,
    ):
        if not connection_string and not account_key:
            raise SpecError(
                "an Azure account needs 'connection_string' or 'account_key'",
                target="connection_string",
            )
        self.account = account
        self.blob_endpoint = blob_endpoint or f"https://{account}.blob.core.windows.net"
        self.max_concurrency = max_concurrency
        self._connection_string = connection_string
        self._account_key = account_key
        self._retry_total = retry_total
        self._client: BlobServiceClient | None = None
        self._lock = threading.Lock()
        self._cache_dir = cache_dir or Path(tempfile.gettempdir()) / "openbai-blob-writes"
        self._md5_up_to = md5_up_to
        self._pool: ThreadPoolExecutor | None = None
        self._rest_client: BlobRestClient | None = None
        self._sas_token: tuple[str, datetime] | None = None
        self._blocks_in_memory = threading.BoundedSemaphore(2 * max_concurrency)
        #: buffers of blocks read for uploads, reused (no new memory to fault in per block)
        self._block_buffers: list[bytearray] = []

    @classmethod
    def from_options(
        cls, account: str, kind: VolumeKind, options: Mapping[str, Any]
    ) -> AzureBlobStorage:
        if kind is not VolumeKind.BLOB:
            raise SpecError(f"azure_blob serves blob containers, not {kind} volumes", target="kind")
        return cls(
            options.get("account_name") or account,
            connection_string=options.get("connection_string"),
            account_key=options.get("account_key"),
            blob_endpoint=options.get("blob_endpoint"),
            max_concurrency=int(options.get("max_concurrency", 8)),
            retry_total=int(options.get("retry_total", 4)),
            cache_dir=Path(options["cache_dir"]) if options.get("cache_dir") else None,
            md5_up_to=int(options["md5_up_to"]) if options.get("md5_up_to") is not None else None,
        )

    @classmethod
    def check_options(cls, account: str, options: Mapping[str, Any]) -> None:
        connection = str(options.get("connection_string") or "")
        settings = _connection_settings(connection)
        key = options.get("account_key") or settings.get("accountkey")
        if connection and not (settings.get("accountkey") or settings.get("sharedaccesssignature")):
            raise SpecError(
                "options.connection_string holds neither AccountKey nor SharedAccessSignature",
                target="options.connection_string",
            )
        if key:
            try:
                base64.b64decode(str(key), validate=True)
            except ValueError:
                raise SpecError(
                    "the account key is not base64 (as Azure gives it)",
                    target="options.account_key",
                ) from None
        for field, endpoint in (
            ("options.blob_endpoint", options.get("blob_endpoint")),
            ("options.connection_string", settings.get("blobendpoint")),
        ):
            if endpoint:
                _check_endpoint(str(endpoint), field)
        if not connection and not key:
            cls(account)  # says what is missing

    # -- client --------------------------------------------------------------------------
    def _service(self) -> BlobServiceClient:
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> BlobServiceClient:
        try:
            from azure.core.pipeline.transport import RequestsTransport
            from azure.storage.blob import BlobServiceClient, ExponentialRetry
        except ModuleNotFoundError as e:
            from openbai.storage.registry import missing_package

            hint = missing_package("azure_blob", e)
            if hint is e:
                raise
            raise hint from e
        from requests import Session
        from requests.adapters import HTTPAdapter

        retries = self._retry_total
        session = Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=64, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        common: dict[str, Any] = {
            "retry_policy": ExponentialRetry(
                initial_backoff=1,
                increment_base=2,
                retry_total=retries,
                random_jitter_range=1,
                retry_connect=retries,
                retry_read=retries,
                retry_status=retries,
            ),
            "transport": RequestsTransport(
                session=session,
                connection_timeout=10,
                # response bodies are read in pieces of this size: the SDK's 4 KiB default
                # spends most of a large download's CPU in Python (2,048 steps per 8 MiB)
                connection_data_block_size=_MiB,
            ),
            **_CLIENT_SIZES,
        }
        try:
            if self._connection_string:
                return BlobServiceClient.from_connection_string(self._connection_string, **common)
            credential = {"account_name": self.account, "account_key": self._account_key or ""}
            return BlobServiceClient(self.blob_endpoint, credential=credential, **common)
        except ValueError as e:
            raise SpecError(f"invalid Azure storage options: {e}", target="options") from e

    def close(self) -> None:
        """Close the HTTP connections (the client is rebuilt if used again)."""
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
            if self._client is not None:
                self._client.close()
                self._client = None
            if self._rest_client is not None:
                self._rest_client.close()
                self._rest_client = None
            self._block_buffers.clear()

    def _rest(self) -> BlobRestClient:
        """The lean client for tree transfers (see blob_rest.py), on the account's endpoint."""
        endpoint = self._endpoint_without_sdk()
        if endpoint is None:  # a connection string spelt otherwise: as the SDK reads it
            url = urlsplit(self._service().url)
            endpoint = f"{url.scheme}://{url.netloc}{url.path}"
        with self._lock:
            if self._rest_client is None:
                self._rest_client = BlobRestClient(
                    endpoint,
                    self._sas,
                    retry_total=self._retry_total,
                )
            return self._rest_client

    def _endpoint_without_sdk(self) -> str | None:
        """The blob endpoint, read without the SDK from the options or a connection string
        naming its ``BlobEndpoint`` or its account (``None``: ask the SDK)."""
        if not self._connection_string:
            return self.blob_endpoint.rstrip("/")
        settings = _connection_settings(self._connection_string)
        if settings.get("blobendpoint"):
            return settings["blobendpoint"].rstrip("/")
        name, protocol = settings.get("accountname"), settings.get("defaultendpointsprotocol")
        if name and protocol in ("http", "https") and "usedevelopmentstorage" not in settings:
            suffix = settings.get("endpointsuffix") or "core.windows.net"
            return f"{protocol}://{name}.blob.{suffix}"
        return None

    def _sas(self) -> str:
        """The query string that authorises the lean client's requests.

        With a key: an account SAS for reading and writing blobs, renewed an hour before it expires.
        With a connection string holding a SAS: that SAS. Neither: none (anonymous).
        """
        settings = _connection_settings(self._connection_string or "")
        key = settings.get("accountkey") or self._account_key
        if not key:
            return (settings.get("sharedaccesssignature") or "").lstrip("?")
        with self._lock:
            now = datetime.now(UTC)
            if self._sas_token is None or self._sas_token[1] - now < timedelta(hours=1):
                expiry = now + _SAS_LIFETIME
                # listing and a container's properties too: a tree transfer needs no SDK
                start = now - timedelta(minutes=15)  # clock skew
                token = account_sas(settings.get("accountname") or self.account, key, start, expiry)
                self._sas_token = (token, expiry)
            return self._sas_token[0]

    def _block_pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.max_concurrency, thread_name_prefix="openbai-blocks"
                )
            return self._pool

    def _container(self, volume: str) -> ContainerClient:
        return self._service().get_container_client(check_volume_name(volume))

    # -- volumes -------------------------------------------------------------------------
    def list_volumes(self) -> list[VolumeInfo]:
        with _translate(self.account):
            names = [c.name for c in self._service().list_containers()]
        return [VolumeInfo(name, VolumeKind.BLOB) for name in sorted(names)]

    def create_volume(self, volume: str) -> VolumeInfo:
        container = self._container(volume)
        with _translate(volume):
            container.create_container()
        return VolumeInfo(volume, VolumeKind.BLOB)

    def delete_volume(self, volume: str) -> None:
        container = self._container(volume)
        with _translate(volume):
            container.delete_container()

    # -- files ---------------------------------------------------------------------------
    def stat(self, volume: str, path: str) -> FileInfo:
        cleaned = blob_path(path)
        if not cleaned:  # the volume (a tree transfer's first question): no SDK
            check_volume_name(volume)
            modified = self._rest().container_modified(volume)
            return FileInfo(path="", is_dir=True, modified=modified)
        from azure.core.exceptions import ResourceNotFoundError

        container = self._container(volume)
        with _translate(f"{volume}/{cleaned}"):
            with contextlib.suppress(ResourceNotFoundError):
                return _blob_info(container.get_blob_client(cleaned).get_blob_properties())
            if not self._has_blobs_under(container, cleaned):
                raise NotFoundError(f"{volume}/{cleaned}: not found", target=f"{volume}/{cleaned}")
            return FileInfo(path=cleaned, is_dir=True)

    @staticmethod
    def _has_blobs_under(container: ContainerClient, path: str) -> bool:
        pages = container.list_blob_names(name_starts_with=f"{path}/", results_per_page=1)
        return next(iter(pages), None) is not None

    def list_dir(
        self, volume: str, path: str = "", *, recursive: bool = False
    ) -> Iterator[FileInfo]:
        cleaned = blob_path(path)
        prefix = f"{cleaned}/" if cleaned else ""
        found = False
        if recursive:  # a tree transfer's listing: lean REST, no SDK
            check_volume_name(volume)
            for listed in self._rest().list_blobs(volume, prefix):
                found = True
                if not listed.name.endswith("/"):  # skip directory-marker blobs
                    yield _listed_info(listed)
            if not found:
                self._rest().container_modified(volume)  # NotFoundError for a missing volume
                if cleaned:
                    where = f"{volume}/{cleaned}"
                    raise NotFoundError(f"{where}: no such directory", target=where)
            return
        from azure.storage.blob import BlobPrefix

        container = self._container(volume)
        with _translate(f"{volume}/{cleaned}"):
            for entry in self._walk(container, prefix):
                found = True
                if isinstance(entry, BlobPrefix):
                    yield FileInfo(path=str(entry.name)[:-1], is_dir=True)
                elif not str(entry.name).endswith("/"):  # skip directory-marker blobs
                    yield _blob_info(entry)
            if not found:
                container.get_container_properties()  # NotFoundError for a missing volume
                if cleaned:
                    where = f"{volume}/{cleaned}"
                    raise NotFoundError(f"{where}: no such directory", target=where)

    @staticmethod
    def _walk(container: ContainerClient, prefix: str) -> Iterator[BlobProperties | BlobPrefix]:
        """One level under ``prefix``; a folder with an empty name (``x//`` in ``x/``) is
        walked in place: its entries (``x//y.txt``) are listed with their whole names, since
        no path names that folder on its own (``x/`` is ``x``)."""
        from azure.storage.blob import BlobPrefix

        for entry in container.walk_blobs(
            name_starts_with=prefix, delimiter="/", include=["metadata"]
        ):
            if isinstance(entry, BlobPrefix) and str(entry.name) == prefix + "/":
                if prefix:  # at the root it would be "/": a name no path may start with
                    yield from AzureBlobStorage._walk(container, str(entry.name))
                continue
            yield entry

    def read(self, volume: str, path: str, offset: int = 0, length: int | None = None) -> bytes:
        cleaned = blob_path(path, allow_root=False)
        if length == 0:
            return b""
        if length is not None and length <= _RANGE_GET_MAX:
            # a range (a mount's read-ahead chunk, a whole small file): one lean GET, not the
            # SDK's ~2.5 ms of CPU per request
            check_volume_name(volume)
            return self._rest().get_blob(volume, cleaned, offset=offset, length=length)[0]
        from azure.core.exceptions import HttpResponseError

        blob = self._container(volume).get_blob_client(cleaned)
        with _translate(f"{volume}/{cleaned}"):
            try:
                stream = blob.download_blob(
                    offset=offset if offset or length is not None else None,
                    length=length,
                    max_concurrency=self.max_concurrency,
                )
                return stream.readall()
            except HttpResponseError as e:
                if e.status_code == 416:  # offset at or past the end
                    return b""
                raise

    def read_into(self, volume: str, path: str, offset: int, into: memoryview) -> int:
        if len(into) > _RANGE_GET_MAX:
            return super().read_into(volume, path, offset, into)
        cleaned = blob_path(path, allow_root=False)
        check_volume_name(volume)
        # a mount's read-ahead chunk, into a buffer it reuses (see blob_rest.get_range_into)
        return self._rest().get_range_into(volume, cleaned, into, offset=offset)[0]

    def upload(self, volume: str, path: str, source: Path) -> FileInfo:
        cleaned = blob_path(path, allow_root=False)
        check_volume_name(volume)
        content_type = mimetypes.guess_type(cleaned)[0] or "application/octet-stream"
        rest = self._rest()
        with _translate(f"{volume}/{cleaned}"), open(source, "rb") as f:
            if os.fstat(f.fileno()).st_size <= _BLOCK_SIZE:
                # read once: the MD5 is of the very bytes sent
                data = f.read()
                md5 = hashlib.md5(data, usedforsecurity=False).digest()
                put = rest.put_blob(volume, cleaned, data, md5=md5, content_type=content_type)
                return FileInfo(cleaned, False, len(data), put, md5.hex())
            return self._upload_blocks(rest, volume, cleaned, f, content_type)

    def _upload_blocks(
        self, rest: BlobRestClient, volume: str, name: str, f: BufferedReader, content_type: str
    ) -> FileInfo:
        """Stage a big file's blocks in parallel while it is read (and hashed), then commit.

        Blocks go to the backend's block pool, shared by all files being uploaded. Unhashed,
        each block is sent by the kernel straight from the file (``blob_rest.FileRange``:
        sendfile, no copy through Python). Hashed, the file is read: a semaphore bounds the
        blocks read but not yet sent across all files, so memory stays at a few dozen MiB
        however many big files a tree transfer uploads at once, and a block is read into a
        buffer that goes back to the backend once the block is stored (fresh memory for each
        8 MiB cost the kernel a page fault and a zeroed page per 4 KiB).
        """
        # as az: hashed only with validate_content (the MD5 cost a big upload a fifth of its
        # speed here); otherwise the source's mtime is kept, by which a re-run skips it
        stat = os.fstat(f.fileno())
        mtime_ns = stat.st_mtime_ns
        if not self.validate_content:
            ids = self._send_blocks(rest, volume, name, f.fileno(), stat.st_size)
            rest.put_block_list(volume, name, ids, md5=None, content_type=content_type,
                                metadata={MTIME_METADATA: str(mtime_ns)})  # fmt: skip
            modified = _source_mtime({MTIME_METADATA: str(mtime_ns)})
            return FileInfo(name, False, stat.st_size, modified)
        digest = hashlib.md5(usedforsecurity=False)
        prefix, ids, size = uuid.uuid4().hex, list[str](), 0
        pending: set[Future[None]] = set()
        pool = self._block_pool()

        def stage(block_id: str, buffer: bytearray, length: int) -> None:
            try:
                block = memoryview(buffer)[:length]
                rest.put_block(volume, name, block_id, block, validate=self.validate_content)
            finally:
                self._give_block_buffer(buffer)

        try:
            while True:
                buffer = self._take_block_buffer()
                try:
                    length = f.readinto(buffer)
                except BaseException:
                    self._give_block_buffer(buffer)
                    raise
                if not length:
                    self._give_block_buffer(buffer)
                    break
                digest.update(memoryview(buffer)[:length])
                size += length
                ids.append(f"{prefix}{len(ids):0{ID_LENGTH - len(prefix)}x}")
                pending.add(pool.submit(stage, ids[-1], buffer, length))
                finished = {p for p in pending if p.done()}
                pending -= finished
                for future in finished:
                    future.result()  # a failed block stops the reading
        finally:
            done, _ = wait(pending)
        for future in done:
            future.result()
        md5 = digest.digest()
        put = rest.put_block_list(volume, name, ids, md5=md5, content_type=content_type)
        return FileInfo(name, False, size, put, md5.hex())

    def _send_blocks(
        self, rest: BlobRestClient, volume: str, name: str, fd: int, size: int
    ) -> list[str]:
        """Stage the ``size`` bytes of the open file ``fd`` as blocks sent from the file on the
        block pool; their ids. The first failure cancels the blocks not yet sent."""
        prefix, ids = uuid.uuid4().hex, list[str]()
        pool = self._block_pool()
        blocks = []
        for offset in range(0, size, _BLOCK_SIZE):
            ids.append(f"{prefix}{len(ids):0{ID_LENGTH - len(prefix)}x}")
            body = FileRange(fd, offset, min(_BLOCK_SIZE, size - offset))
            blocks.append(pool.submit(rest.put_block, volume, name, ids[-1], body))
        _all_done(blocks)  # none still reads the file once it is closed
        return ids

    def _take_block_buffer(self) -> bytearray:
        """A buffer for one block, once fewer than the bound are read and not yet sent."""
        self._blocks_in_memory.acquire()
        return self._spare_buffer()

    def _give_block_buffer(self, buffer: bytearray) -> None:
        self._keep_buffer(buffer)
        self._blocks_in_memory.release()

    def _spare_buffer(self) -> bytearray:
        with self._lock:
            return self._block_buffers.pop() if self._block_buffers else bytearray(_BLOCK_SIZE)

    def _keep_buffer(self, buffer: bytearray) -> None:
        with self._lock:
            if len(self._block_buffers) < 2 * self.max_concurrency:
                self._block_buffers.append(buffer)

    def download(self, volume: str, path: str, target: Path) -> None:
        cleaned = blob_path(path, allow_root=False)
        check_volume_name(volume)
        rest = self._rest()
        with _translate(f"{volume}/{cleaned}"), atomic_target(target) as tmp:
            # most files of a tree are small: one lean GET; the rest of a bigger blob comes
            # in ranges of that size on the block pool, each written at its place, all from
            # the version of the blob the first range came from
            data, size, etag = rest.get_range(volume, cleaned, length=_BLOCK_SIZE)
            with open(tmp, "wb") as f:
                f.write(data)
                if size <= len(data):
                    return
                f.flush()

                def fetch(offset: int) -> None:
                    # received into a reused buffer (not one the kernel faults in afresh)
                    buffer = self._spare_buffer()
                    try:
                        got, _, _ = rest.get_range_into(
                            volume, cleaned, memoryview(buffer), offset=offset, etag=etag
                        )
                        view, at = memoryview(buffer)[:got], offset
                        while view:
                            written = os.pwrite(f.fileno(), view, at)
                            view, at = view[written:], at + written
                    finally:
                        self._keep_buffer(buffer)

                pool = self._block_pool()
                ranges = [pool.submit(fetch, at) for at in range(len(data), size, _BLOCK_SIZE)]
                _all_done(ranges)

    def delete(self, volume: str, path: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        cleaned = blob_path(path, allow_root=False)
        container = self._container(volume)
        where = f"{volume}/{cleaned}"
        with _translate(where):
            try:
                container.delete_blob(cleaned, delete_snapshots="include")
                return
            except ResourceNotFoundError as e:
                names = list(container.list_blob_names(name_starts_with=f"{cleaned}/"))
                if not names:
                    raise NotFoundError(f"{where}: not found", target=where) from e
            for start in range(0, len(names), _DELETE_BATCH):
                self._delete_blobs(container, names[start : start + _DELETE_BATCH], where)

    @staticmethod
    def _delete_blobs(container: ContainerClient, names: list[str], where: str) -> None:
        responses = container.delete_blobs(
            *names, delete_snapshots="include", raise_on_any_failure=False
        )
        failed = [r.status_code for r in responses if r.status_code not in (202, 404)]
        if failed:
            raise StorageError(
                f"{where}: {len(failed)} blobs could not be deleted (HTTP {failed[0]})",
                target=where,
            )

    def make_dir(self, volume: str, path: str) -> None:
        blob_path(path)
        container = self._container(volume)
        with _translate(volume):
            container.get_container_properties()

    # -- in place (mounts) -------------------------------------------------------------------
    supports_writer: ClassVar[bool] = True

    def open_writer(self, volume: str, path: str, *, truncate: bool = False) -> FileWriter:
        cleaned = blob_path(path, allow_root=False)
        blob = self._container(volume).get_blob_client(cleaned)
        target = _BlobTarget(blob, f"{volume}/{cleaned}")
        spill = self._cache_dir / f"{uuid.uuid4().hex}.spill"
        return BlockFileWriter(
            target, self._block_pool(), spill, truncate=truncate, md5_up_to=self._md5_up_to
        )

    def rename(self, volume: str, source: str, target: str) -> None:
        src = blob_path(source, allow_root=False)
        dst = blob_path(target, allow_root=False)
        container = self._container(volume)
        source_blob = container.get_blob_client(src)
        where = f"{volume}/{src}"
        with _translate(where):
            copy = container.get_blob_client(dst).start_copy_from_url(source_blob.url)
            status = copy.get("copy_status")
            deadline = time.monotonic() + 300
            while status == "pending" and time.monotonic() < deadline:
                time.sleep(0.2)
                props = container.get_blob_client(dst).get_blob_properties()
                status = props.copy.status
            if status != "success":
                raise StorageError(f"{where}: copy to {dst} ended {status}", target=where)
            source_blob.delete_blob(delete_snapshots="include")


class _BlobTarget(BlockTarget):
    """One block blob, for :class:`BlockFileWriter`."""

    def __init__(self, blob: BlobClient, where: str):
        self._blob = blob
        self._where = where
        self._content_type = mimetypes.guess_type(where)[0] or "application/octet-stream"

    def committed(self) -> tuple[int, list[tuple[str, int]]]:
        from azure.core.exceptions import ResourceNotFoundError

        with _translate(self._where):
            try:
                size = int(self._blob.get_blob_properties().size)
            except ResourceNotFoundError:
                return 0, []
            blocks, _ = self._blob.get_block_list("committed")
        return size, [(str(b.id), int(b.size)) for b in blocks]

    def read(self, offset: int, length: int) -> bytes:
        with _translate(self._where):
            return self._blob.download_blob(offset=offset, length=length).readall()

    def stage(self, block_id: str, data: bytes) -> None:
        with _translate(self._where):
            self._blob.stage_block(block_id, data, length=len(data))

    def commit(self, block_ids: list[str], *, md5: bytes | None = None) -> None:
        from azure.storage.blob import BlobBlock, ContentSettings

        settings = ContentSettings(
            content_type=self._content_type,
            content_md5=bytearray(md5) if md5 is not None else None,
        )
        with _translate(self._where):
            self._blob.commit_block_list(
                [BlobBlock(block_id) for block_id in block_ids], content_settings=settings
            )

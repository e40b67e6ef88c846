"""What a mount knows of the names in its volume: attributes and directory listings, cached.

- Attributes and listings are reused for ``ttl`` seconds. A lookup lists its directory
  (paged) and caches the listing, so opening 2,000 files of a directory costs one listing,
  not 2,000 HEAD requests; directories of more than LOOKUP_LISTING_MAX entries are looked up
  one entry at a time instead.
- One listing per directory is on its way at a time: the threads that need it meanwhile wait
  for that one. (Without it, every FUSE thread that missed the cache when it expired listed
  the directory itself: 16 readers of a directory of 2,000 files spent their time parsing the
  same XML listing 16 times over.)
- Directories made in this mount are remembered (a blob store has none without blobs under
  them), and anything the mount changes drops the cached entries it touches at once.
"""

from __future__ import annotations

import posixpath
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from openbai.errors import NotFoundError
from openbai.storage.base import FileInfo, StorageBackend

#: a lookup lists its directory (and caches the listing) when it has at most this many entries
LOOKUP_LISTING_MAX = 10_000

#: a directory's entries by name, or None: more than LOOKUP_LISTING_MAX of them
_Listing = dict[str, FileInfo] | None


class DirectoryCache:
    def __init__(
        self,
        backend: StorageBackend,
        volume: str,
        path: Callable[[str], str],
        ttl: float,
    ):
        self._backend = backend
        self._volume = volume
        self._path = path  # the volume path of a mount key
        self._ttl = ttl
        self._lock = threading.Lock()
        self._infos: dict[str, tuple[float, FileInfo | None]] = {}
        self._listings: dict[str, tuple[float, dict[str, FileInfo]]] = {}
        self._too_large: dict[str, float] = {}
        self._pending: dict[tuple[str, bool], Future[_Listing]] = {}
        self._made: set[str] = set()

    # -- directories made here -------------------------------------------------------------
    def is_made_dir(self, key: str) -> bool:
        return key in self._made

    def made_dirs(self) -> list[str]:
        with self._lock:
            return list(self._made)

    def add_dir(self, key: str) -> None:
        with self._lock:
            self._made.add(key)

    def remove_dir(self, key: str) -> None:
        with self._lock:
            self._made.discard(key)

    def move_dirs(self, src: str, dst: str) -> None:
        """Directories made at or under ``src`` are now under ``dst``; nothing cached stays."""
        with self._lock:
            for key in [k for k in self._made if k == src or k.startswith(src + "/")]:
                self._made.discard(key)
                self._made.add(dst + key[len(src) :])
            self._listings.clear()
            self._infos.clear()

    # -- cached names ----------------------------------------------------------------------
    def forget(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._infos.pop(key, None)
                self._listings.pop(key, None)
                self._listings.pop(posixpath.dirname(key), None)

    def lookup(self, key: str) -> FileInfo | None:
        now = time.monotonic()
        with self._lock:
            cached = self._infos.get(key)
            if cached is not None and cached[0] > now:
                return cached[1]
            listing = self._listings.get(posixpath.dirname(key))
            if listing is not None and listing[0] > now:
                return listing[1].get(posixpath.basename(key))
            too_large = self._too_large.get(posixpath.dirname(key), 0.0) > now
        if not too_large:
            entries = self._list_once(posixpath.dirname(key), limited=True)
            if entries is not None:  # one paged listing answers every lookup in the directory
                return entries.get(posixpath.basename(key))
        try:
            info: FileInfo | None = self._backend.stat(self._volume, self._path(key))
        except NotFoundError:
            info = None
        with self._lock:
            self._infos[key] = (now + self._ttl, info)
        return info

    def listing(self, key: str) -> dict[str, FileInfo]:
        """The directory's entries (NotFoundError if there is no such directory)."""
        with self._lock:
            cached = self._listings.get(key)
            if cached is not None and cached[0] > time.monotonic():
                return cached[1]
        entries = self._list_once(key, limited=False)
        assert entries is not None  # only a limited listing gives up
        return entries

    def _list_once(self, key: str, *, limited: bool) -> _Listing:
        """List the directory, or wait for the same listing already on its way."""
        with self._lock:
            pending = self._pending.get((key, limited))
            mine = pending is None
            if pending is None:
                pending = self._pending[(key, limited)] = Future()
        if not mine:
            return pending.result()
        try:
            entries = self._list(key, limited=limited)
        except BaseException as e:
            pending.set_exception(e)
            raise
        else:
            pending.set_result(entries)
            return entries
        finally:
            with self._lock:
                del self._pending[(key, limited)]

    def _list(self, key: str, *, limited: bool) -> _Listing:
        now = time.monotonic()
        entries: dict[str, FileInfo] = {}
        try:
            for info in self._backend.list_dir(self._volume, self._path(key)):
                entries[info.name] = info
                if limited and len(entries) > LOOKUP_LISTING_MAX:
                    with self._lock:
                        self._too_large[key] = now + self._ttl
                    return None
        except NotFoundError:
            if key and key not in self._made:
                if limited:
                    return {}
                raise
            entries = {}
        with self._lock:
            self._listings[key] = (now + self._ttl, entries)
        return entries

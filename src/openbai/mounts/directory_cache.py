"""What a mount knows of the names in its volume: attributes and directory listings, cached.

- Attributes and listings are reused for ``ttl`` seconds. A lookup lists its directory
  (paged) and caches the listing, so opening 2,000 files of a directory costs one listing,
  not 2,000 HEAD requests; directories of more than LOOKUP_LISTING_MAX entries are looked up
  one entry at a time instead.
- One listing per directory is on its way at a time: the threads that need it meanwhile wait
  for that one. (Without it, every FUSE thread that missed the cache when it expired listed
  the directory itself: 16 readers of a directory of 2,000 files spent their time parsing the
  same XML listing 16 times over.)
- A listing that has just expired still answers, for up to another ``ttl``, while a fresh one
  is fetched in the background: listing 2,000 blobs takes 1-4 s on a busy store, so with a
  3 s ``ttl`` a reader of many files would otherwise wait for a listing at every expiry. A
  name from another client thus shows within 2 x ``ttl`` plus one listing; anything changed
  through this mount shows at once (a file written here is added to its directory's cached
  listing, and a listing on its way when a file is written here gains it when it arrives;
  anything else changed drops the listing, and a listing on its way is not kept).
- Directories made in this mount are remembered (a blob store has none without blobs under
  them), and anything the mount changes drops the cached entries it touches at once.
"""

from __future__ import annotations

import logging
import posixpath
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime

from openbai.errors import NotFoundError, OpenBaiError
from openbai.storage.base import FileInfo, StorageBackend

log = logging.getLogger("openbai.mount")

#: a lookup lists its directory (and caches the listing) when it has at most this many entries
LOOKUP_LISTING_MAX = 10_000

#: a directory's entries by name, or None: more than LOOKUP_LISTING_MAX of them
_Listing = dict[str, FileInfo] | None


class _Run:
    """A listing on its way, and what changed in its directory meanwhile."""

    def __init__(self) -> None:
        #: a name was removed or changed here: the listing may show it as it was
        self.spoiled = False
        #: files written here meanwhile, which the listing may miss or show as they were
        self.stored: dict[str, FileInfo] = {}


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
        #: per directory, the listings on its way (a listing spoiled meanwhile is returned
        #: but not kept)
        self._running: dict[str, list[_Run]] = {}
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
                for changed in (key, posixpath.dirname(key)):
                    for run in self._running.get(changed, ()):
                        run.spoiled = True
                self._infos.pop(key, None)
                self._listings.pop(key, None)
                self._listings.pop(posixpath.dirname(key), None)

    def stored(self, key: str, size: int, mtime_ns: int) -> None:
        """A file made or written through this mount: its attributes are known, and its
        directory's cached listing gains it rather than being dropped (creating 2,000 files
        in a directory listed it 2,000 times, once per new name's lookup), and so does a
        listing on its way (dropping it, 16 threads creating files listed the directory again
        and again, each listing spoiled by the files made while it ran)."""
        parent = posixpath.dirname(key)
        modified = datetime.fromtimestamp(mtime_ns / 1e9, UTC)
        info = FileInfo(self._path(key), False, size, modified)
        with self._lock:
            for run in self._running.get(parent, ()):
                run.stored[info.name] = info
            self._infos[key] = (time.monotonic() + self._ttl, info)
            self._listings.pop(key, None)
            cached = self._listings.get(parent)
            if cached is not None:  # a new dict: readers may be iterating the old one
                self._listings[parent] = (cached[0], {**cached[1], info.name: info})

    def lookup(self, key: str) -> FileInfo | None:
        now = time.monotonic()
        with self._lock:
            cached = self._infos.get(key)
            if cached is not None and cached[0] > now:
                return cached[1]
            listing = self._listings.get(posixpath.dirname(key))
            if listing is not None and listing[0] > now - self._ttl:
                if listing[0] <= now:
                    self._refresh_later(posixpath.dirname(key))
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
        now = time.monotonic()
        with self._lock:
            cached = self._listings.get(key)
            if cached is not None and cached[0] > now - self._ttl:
                if cached[0] <= now:
                    self._refresh_later(key)
                return cached[1]
        entries = self._list_once(key, limited=False)
        assert entries is not None  # only a limited listing gives up
        return entries

    def _refresh_later(self, key: str) -> None:
        """List ``key`` again in the background (called with the lock held)."""
        if (key, True) in self._pending or (key, False) in self._pending:
            return
        pending: Future[_Listing] = Future()
        self._pending[(key, False)] = pending  # taken now: the next lookup will not start one
        threading.Thread(target=self._refresh, args=(key, pending), daemon=True).start()

    def _refresh(self, key: str, pending: Future[_Listing]) -> None:
        try:
            self._run(key, False, pending)
        except OpenBaiError as e:  # the next lookup lists it itself and gets the error
            log.info("listing %s again failed: %s", key or "/", e.message)
            with self._lock:
                self._listings.pop(key, None)

    def _list_once(self, key: str, *, limited: bool) -> _Listing:
        """List the directory, or wait for the same listing already on its way."""
        with self._lock:
            pending = self._pending.get((key, limited))
            mine = pending is None
            if pending is None:
                pending = self._pending[(key, limited)] = Future()
        if not mine:
            return pending.result()
        return self._run(key, limited, pending)

    def _run(self, key: str, limited: bool, pending: Future[_Listing]) -> _Listing:
        """List the directory for everyone waiting on ``pending``."""
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
        run = _Run()
        with self._lock:
            self._running.setdefault(key, []).append(run)
        try:
            entries = self._entries(key, limited=limited)
        finally:
            with self._lock:
                running = [r for r in self._running[key] if r is not run]
                if running:
                    self._running[key] = running
                else:
                    del self._running[key]
        if entries is None:
            with self._lock:
                self._too_large[key] = now + self._ttl
            return None
        with self._lock:
            entries.update(run.stored)
            if not run.spoiled:
                self._listings[key] = (now + self._ttl, entries)
        return entries

    def _entries(self, key: str, *, limited: bool) -> _Listing:
        entries: dict[str, FileInfo] = {}
        try:
            folder = self._path(key)
            for info in self._backend.list_dir(self._volume, folder):
                if folder and info.path.startswith(folder + "//"):
                    continue  # a blob in a folder with an empty name (x//y): no file reaches it
                entries[info.name] = info
                if limited and len(entries) > LOOKUP_LISTING_MAX:
                    return None
        except NotFoundError:
            if key and key not in self._made:
                if limited:
                    return {}
                raise
            entries = {}
        return entries

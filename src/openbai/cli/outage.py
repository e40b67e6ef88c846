"""A server that went away while a command follows a job (a file stream, ``job wait``): a
restart (``bai serve`` under systemd's ``Restart=always``, an upgrade) is ridden out, with
back-off, for :data:`OUTAGE_SECONDS`, and only then is it the command's error."""

from __future__ import annotations

import time

from openbai.errors import OpenBaiError

#: how long a follower keeps reaching for its server before it gives up
OUTAGE_SECONDS = 120.0
#: the longest wait between two tries
_MOST_BACKOFF = 2.0


class Outage:
    def __init__(self, server: str, limit: float = OUTAGE_SECONDS):
        self.server = server
        self.limit = limit
        self._since: float | None = None
        self._tries = 0

    def failed(self, error: BaseException) -> None:
        """Wait before the next try; an ``OpenBaiError`` once the server has been away too long."""
        now = time.monotonic()
        if self._since is None:
            self._since = now
        self._tries += 1
        if now - self._since > self.limit:
            raise OpenBaiError(
                f"the openbai server at {self.server} has not answered for"
                f" {now - self._since:.0f} s ({self._tries} tries): {error}",
                code="ServerUnreachable",
            ) from error
        time.sleep(min(_MOST_BACKOFF, 0.1 * 2**self._tries))

    def passed(self) -> None:
        """The server answered: a later outage gets the whole time again."""
        self._since, self._tries = None, 0

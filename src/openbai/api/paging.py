"""List pages as ARM returns them: ``{"value": [...], "nextLink": url}``.

Clients (the SDK included) fetch ``nextLink`` verbatim with GET, so it repeats the request's
path and query (``api-version``, ``maxresults``, filters) and adds ``$skiptoken``: the offset
of the next page. Its host is the server's own (:mod:`openbai.api.urls`), not the request's
``Host`` header. Offsets suit openbai's lists, which are ordered by name or by creation (new jobs
land at the end), so a page boundary does not move while a client pages through.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request

from openbai.api.urls import base_url

MAX_RESULTS = 1000
#: the largest offset a page may start at (SQL takes 64-bit offsets; no list is this long)
MAX_OFFSET = 2**31 - 1


@dataclass(frozen=True)
class Paging:
    offset: int
    limit: int

    def fetch(self, lister: Callable[..., list[Any]], *args: Any) -> list[Any]:
        """Call a service lister for this page plus one item (to know whether more follow)."""
        return lister(*args, offset=self.offset, limit=self.limit + 1)


async def paging(
    maxresults: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = MAX_RESULTS,
    skiptoken: Annotated[
        int, Query(alias="$skiptoken", ge=0, le=MAX_OFFSET, include_in_schema=False)
    ] = 0,
) -> Paging:
    return Paging(skiptoken, maxresults)


Page = Annotated[Paging, Depends(paging)]


def page_of(request: Request, paging: Paging, rows: Sequence[Any]) -> dict[str, Any]:
    """A page from the rows fetched with :meth:`Paging.fetch` (at most ``limit + 1`` of them)."""
    body: dict[str, Any] = {"value": list(rows[: paging.limit])}
    if len(rows) > paging.limit:
        query = request.url.include_query_params(**{"$skiptoken": paging.offset + paging.limit})
        body["nextLink"] = f"{base_url(request)}{request.url.path}?{query.query}"
    return body


def slice_of(request: Request, paging: Paging, rows: Sequence[Any]) -> dict[str, Any]:
    """A page of a list that was computed whole."""
    return page_of(request, paging, rows[paging.offset : paging.offset + paging.limit + 1])

"""List pages as ARM returns them: ``{"value": [...], "nextLink": url}``.

Clients (the SDK included) fetch ``nextLink`` verbatim with GET, so it repeats the request's
path and query (``api-version``, ``maxresults``, filters) and adds ``$skiptoken``. Its host is
the server's own (:mod:`openbai.api.urls`), not the request's ``Host`` header.

A list of jobs goes on after the last job sent (``$skiptoken=k<key>``): the SDK fetches the
next page as its caller iterates, and a caller that deletes each job it sees must not shift
the next page past the jobs after it. The other lists (short, ordered by name) go on from an
offset (``$skiptoken=<n>``): what is deleted or made meanwhile may move their boundaries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError

from openbai.api.urls import base_url

MAX_RESULTS = 1000
#: the largest offset a page may start at (SQL takes 64-bit offsets; no list is this long)
MAX_OFFSET = 2**31 - 1


@dataclass(frozen=True)
class Paging:
    offset: int
    limit: int
    #: the key of the last item of the page before (a keyed list's ``$skiptoken``)
    after: int | None = None

    def fetch(self, lister: Callable[..., list[Any]], *args: Any) -> list[Any]:
        """Call a service lister for this page plus one item (to know whether more follow)."""
        return lister(*args, offset=self.offset, limit=self.limit + 1)

    def fetch_after(self, lister: Callable[..., list[Any]], *args: Any) -> list[Any]:
        """:meth:`fetch` for a lister that goes on ``after`` a key (an offset is still
        taken: a link made before keys were)."""
        if self.after is None:
            return self.fetch(lister, *args)
        return lister(*args, after=self.after, limit=self.limit + 1)


#: an offset, or ``k`` and a key
_SKIPTOKEN = r"^(\d{1,10}|k\d{1,19})$"


async def paging(
    maxresults: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = MAX_RESULTS,
    skiptoken: Annotated[
        str, Query(alias="$skiptoken", pattern=_SKIPTOKEN, include_in_schema=False)
    ] = "0",
) -> Paging:
    if skiptoken.startswith("k"):
        return Paging(0, maxresults, after=int(skiptoken[1:]))
    offset = int(skiptoken)
    if offset > MAX_OFFSET:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", "$skiptoken"),
                    "msg": f"at most {MAX_OFFSET}",
                    "type": "value_error",
                }
            ]
        )
    return Paging(offset, maxresults)


Page = Annotated[Paging, Depends(paging)]


def page_of(
    request: Request, paging: Paging, rows: Sequence[Any], *, last_key: int | None = None
) -> dict[str, Any]:
    """A page from the rows fetched with :meth:`Paging.fetch` (at most ``limit + 1`` of them);
    ``last_key``: a keyed list's, of the page's last row."""
    body: dict[str, Any] = {"value": list(rows[: paging.limit])}
    if len(rows) > paging.limit:
        token = f"k{last_key}" if last_key is not None else paging.offset + paging.limit
        query = request.url.include_query_params(**{"$skiptoken": token})
        body["nextLink"] = f"{base_url(request)}{request.url.path}?{query.query}"
    return body


def slice_of(request: Request, paging: Paging, rows: Sequence[Any]) -> dict[str, Any]:
    """A page of a list that was computed whole."""
    return page_of(request, paging, rows[paging.offset : paging.offset + paging.limit + 1])

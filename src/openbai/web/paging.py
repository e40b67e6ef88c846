"""Pages of long lists: a page number becomes an offset and a limit for the services, which
fetch one row more than shown to know whether another page follows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PAGE_SIZE = 50


@dataclass(frozen=True)
class Pager:
    number: int = 1
    size: int = PAGE_SIZE

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def limit(self) -> int:
        """Rows to fetch: one more than a page holds."""
        return self.size + 1

    def cut(self, rows: Sequence[Any], *, total: int | None = None) -> Page:
        return Page(list(rows[: self.size]), self, len(rows) > self.size, total)


@dataclass(frozen=True)
class Page:
    rows: list[Any]
    pager: Pager
    has_next: bool
    total: int | None = None

    @property
    def number(self) -> int:
        return self.pager.number

    @property
    def pages(self) -> int | None:
        if self.total is None:
            return None
        return max(1, -(-self.total // self.pager.size))

    @property
    def first_row(self) -> int:
        return self.pager.offset + 1 if self.rows else 0

    @property
    def last_row(self) -> int:
        return self.pager.offset + len(self.rows)

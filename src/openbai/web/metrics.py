"""Metrics a job prints, for the chart: lines like ``metric: loss=0.31 step=200``.

The format: a line that starts with ``metric:`` (leading blanks allowed), then
blank-separated ``name=number`` pairs. A name is a letter or ``_`` followed by up to 63
letters, digits, ``_``, ``.``, ``-`` or ``/``; a number is a decimal such as ``3``,
``-0.5`` or ``1e-3``. ``step`` is the x axis; a line without it is placed at its line number
in the file. Pairs that do not fit (``acc=n/a``) are skipped; non-finite numbers too.

Lines are what a terminal would show: a carriage return rewrites the current line, so only
the last state of a ``\\r`` progress bar counts.
"""

from __future__ import annotations

import codecs
import math
import re
from dataclasses import dataclass

PREFIX = "metric:"
_PAIR = re.compile(r"([A-Za-z_][\w.\-/]{0,63})=([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")
#: longest line kept whole; a longer one cannot be a metric line and is cut
MAX_LINE = 64 * 1024
#: most distinct metric names charted; names beyond are ignored
MAX_SERIES = 20


@dataclass(frozen=True)
class MetricPoint:
    """One metric line: its x (``step``, else its line number) and its values."""

    x: float
    line: int
    values: dict[str, float]

    def to_json(self) -> dict[str, object]:
        return {"x": self.x, "line": self.line, "values": self.values}


def parse_metric(line: str, line_number: int) -> MetricPoint | None:
    """The point of a metric line; None for any other line or one without a value."""
    text = line.strip()
    if not text.startswith(PREFIX):
        return None
    values: dict[str, float] = {}
    for token in text[len(PREFIX) :].split():
        match = _PAIR.fullmatch(token)
        if match is None:
            continue
        number = float(match[2])
        if math.isfinite(number):
            values[match[1]] = number
    step = values.pop("step", None)
    if not values:
        return None
    return MetricPoint(float(line_number) if step is None else step, line_number, values)


class LineSplitter:
    """Text in, finished lines out, as a terminal shows them (``\\r`` rewrites the line)."""

    def __init__(self) -> None:
        self._current = ""
        self._rewrite = False

    def feed(self, text: str) -> list[str]:
        lines: list[str] = []
        for piece in re.split(r"(\r|\n)", text):
            if piece == "\n":
                lines.append(self._current)
                self._current, self._rewrite = "", False
            elif piece == "\r":
                self._rewrite = True
            elif piece:
                if self._rewrite:
                    self._current, self._rewrite = "", False
                self._current = (self._current + piece)[:MAX_LINE]
        return lines

    def finish(self) -> list[str]:
        """The last line, if the text did not end with a newline."""
        rest, self._current = self._current, ""
        return [rest] if rest else []


class MetricReader:
    """Bytes of a job's stdout in, metric points out (at most :data:`MAX_SERIES` names)."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._lines = LineSplitter()
        self._count = 0
        self._names: set[str] = set()

    def feed(self, data: bytes, *, final: bool = False) -> list[MetricPoint]:
        lines = self._lines.feed(self._decoder.decode(data, final))
        if final:
            lines += self._lines.finish()
        points = []
        for line in lines:
            self._count += 1
            point = parse_metric(line, self._count)
            if point is not None and (point := self._admit(point)) is not None:
                points.append(point)
        return points

    def _admit(self, point: MetricPoint) -> MetricPoint | None:
        values = {}
        for name, value in point.values.items():
            if name in self._names or len(self._names) < MAX_SERIES:
                self._names.add(name)
                values[name] = value
        return MetricPoint(point.x, point.line, values) if values else None

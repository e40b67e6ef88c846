"""``-o table`` without rich when rich would print plain cells that fit: the same text, byte
for byte, for ~45 ms less CPU at start-up (rich's import), which is most of a read's budget.

rich stays the renderer for everything else (a cell it could read as markup or an emoji code,
a character whose width is not one column, a table wider than the console, an environment
that changes its terminal detection): :func:`plain_table` then answers None.
``tests/cli/test_quick_reads.py`` compares both on many tables, on a terminal and off one.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence

#: what rich would read as markup ([bold]) or an emoji code (:smile:, :100:); a digits-only
#: code other than rich's two (the minutes of a time, "11:38:55") is taken as it is
_MARKUP = re.compile(r"[\[\]]")
_EMOJI = re.compile(r":(\S*?)(?:-(?:emoji|text))?:")
_EMOJI_DIGITS = frozenset({"100", "1234"})
_PLAIN = re.compile(r"[ -~]*")  # printable ASCII: one column per character
#: variables by which rich decides differently whether, and how, it writes to a terminal
_RICH_ENV = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "NO_COLOR", "JUPYTER_COLUMNS")
_BOLD, _RESET = "\x1b[1m", "\x1b[0m"


def _safe(cell: str) -> bool:
    if not _PLAIN.fullmatch(cell) or _MARKUP.search(cell):
        return False
    return all(
        m.group(1).isdigit() and m.group(1) not in _EMOJI_DIGITS for m in _EMOJI.finditer(cell)
    )


def _console_width() -> int:
    """rich's ``Console().width`` (its ``size``), for a terminal that is not a dumb one."""
    width = None
    for fd in (0, 1, 2):
        try:
            width = os.get_terminal_size(fd).columns
        except (AttributeError, ValueError, OSError):
            continue
        break
    columns = os.environ.get("COLUMNS")
    if columns is not None and columns.isdigit():
        width = int(columns)
    return width or 80


def plain_table(titles: Sequence[str], rows: Sequence[Sequence[str]]) -> str | None:
    """What ``Console(width=max(100, Console().width), soft_wrap=True).print(Table(box=None,
    header_style="bold", pad_edge=False))`` prints for these cells, or None where that is not
    known without rich."""
    if any(name in os.environ for name in _RICH_ENV):
        return None
    try:
        terminal = sys.stdout.isatty()
    except (AttributeError, ValueError):
        return None
    if terminal and os.environ.get("TERM", "").lower() in ("", "dumb", "unknown"):
        return None
    if not all(_safe(cell) for row in (titles, *rows) for cell in row):
        return None
    widths = [max(len(row[i]) for row in (titles, *rows)) for i in range(len(titles))]
    if sum(widths) + 2 * (len(widths) - 1) > max(100, _console_width()):
        return None  # rich would wrap or shrink columns
    lines = []
    if terminal:  # each header cell, and each pad beside it, bold on its own
        header = []
        for i, (title, width) in enumerate(zip(titles, widths, strict=True)):
            if i:
                header.append(f"{_BOLD} {_RESET}")
            header.append(f"{_BOLD}{title.ljust(width)}{_RESET}")
            if i < len(widths) - 1:
                header.append(f"{_BOLD} {_RESET}")
        lines.append("".join(header))
    else:
        lines.append("  ".join(t.ljust(w) for t, w in zip(titles, widths, strict=True)))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "".join(line + "\n" for line in lines)

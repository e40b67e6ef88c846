"""File names a job wrote that are not UTF-8, as the API and the web page show them.

A volume on local disk lists each byte of a name that is not UTF-8 as a lone surrogate
(``os.fsdecode``). Such a name is no text: JSON, HTML, a URL and a link's signature can
carry none of it. It is shown with each such byte as U+FFFD and gets no link, so that one
file named so cannot make its whole folder fail to list (and hide the others).
"""

from __future__ import annotations

import re

_UNDECODED = re.compile("[\ud800-\udfff]")


def is_text(name: str) -> bool:
    """Whether ``name`` is text, so that a link can name it."""
    return _UNDECODED.search(name) is None


def shown_name(name: str) -> str:
    """``name`` with each byte that was not UTF-8 as U+FFFD."""
    return _UNDECODED.sub("\ufffd", name)

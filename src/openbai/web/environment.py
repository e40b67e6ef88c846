"""A job's ``AZ_BATCHAI_*`` values, as its node runner recorded them in the execution log.

The runner writes one line per variable (``2018/05/01 12:00:00 AZ_BATCHAI_JOB_TEMP=...``)
into ``execution.log`` (``execution-<node>.log`` per node on multi-node jobs) before the job
starts, so the page shows what the job really saw, also long after its nodes are gone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_LINE = re.compile(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (AZ_BATCHAI_\w+)=(.*)")
SINGLE_NODE_LOG = "execution.log"


def parse_environment(text: str) -> dict[str, str]:
    """The ``AZ_BATCHAI_*`` variables logged in ``text`` (a later line wins), sorted."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = _LINE.fullmatch(line)
        if match:
            found[match[1]] = match[2]
    return dict(sorted(found.items()))


def execution_log_name(names: Iterable[str]) -> str | None:
    """The execution log to read: ``execution.log``, else the first node's."""
    logs = sorted(n for n in names if n.startswith("execution") and n.endswith(".log"))
    if SINGLE_NODE_LOG in logs:
        return SINGLE_NODE_LOG
    return logs[0] if logs else None

"""Many commands at once that find no dispatcher answering start one, not one each: the first
claims the start, the others leave it to that one while it comes up."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from openbai.installation import START_GRACE, _claim_start


def test_of_many_callers_at_once_one_claims_the_start(tmp_path: Path) -> None:
    marker = tmp_path / "dispatcher.starting"
    with ThreadPoolExecutor(16) as pool:
        claims = list(pool.map(lambda _: _claim_start(marker), range(64)))
    assert claims.count(True) == 1


def test_a_claim_whose_dispatcher_never_came_up_expires(tmp_path: Path) -> None:
    marker = tmp_path / "dispatcher.starting"
    assert _claim_start(marker)
    assert not _claim_start(marker)
    stale = time.time() - START_GRACE - 1
    os.utime(marker, (stale, stale))
    assert _claim_start(marker)

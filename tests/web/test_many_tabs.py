"""Ten job pages open in one browser all stay live: each page holds one event stream (the
browser allows six connections per host; two streams per page froze the third tab)."""

from __future__ import annotations

from pathlib import Path

import pytest
from api.support import Server
from playwright.sync_api import BrowserContext

from . import test_browser
from .test_browser import Jobs, lines, log_in, wait_for_trigger

# the browser tests' fixtures: Chromium, a real ``bai serve``, a context, jobs through the API
chromium, server, context, jobs = (
    test_browser.chromium,
    test_browser.server,
    test_browser.context,
    test_browser.jobs,
)

pytestmark = pytest.mark.browser

TABS = 10


def test_ten_open_job_pages_all_show_a_new_line(
    context: BrowserContext, server: Server, jobs: Jobs, gates: Path
) -> None:
    from playwright.sync_api import expect

    for i in range(TABS):
        jobs.create(
            f"tab{i}", f"echo started {i}\n" + wait_for_trigger(gates, f"go{i}") + "echo new line\n"
        )
    first = context.new_page()
    log_in(first, server.token)
    pages = []
    for i in range(TABS):
        page = first if i == 0 else context.new_page()
        page.goto(f"/ui/workspaces/rg/ws/experiments/exp/jobs/tab{i}")
        expect(page.locator(".log .line").first).to_have_text(f"started {i}", timeout=60_000)
        pages.append(page)
    for i in range(TABS):
        (gates / f"go{i}").touch()
    for i, page in enumerate(pages):
        expect(page.locator(".log .line").nth(1)).to_have_text("new line", timeout=60_000)
        assert lines(page)[:2] == [f"started {i}", "new line"]
    # and the other pages still answer: the explorer is not frozen
    extra = context.new_page()
    extra.goto("/ui/storage")
    expect(extra.locator("h1")).to_have_text("Storage accounts")

"""Ten job pages open in one browser all stay live. The browser allows six HTTP/1.1
connections per host for all its tabs: with a stream per page the seventh page did not load.
The pages share one stream (a SharedWorker: openbai-live.js, web/shared_stream.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from api.support import Server
from playwright.sync_api import Browser, BrowserContext

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


def test_ten_open_job_pages_all_stay_live(
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
    own: list[str] = []  # streams a page opened itself, not through the shared worker
    for i in range(TABS):  # each page connected (a third stream per host would wait)
        page = first if i == 0 else context.new_page()
        page.on("request", lambda r: own.append(r.url) if "/ui/live?" in r.url else None)
        page.goto(f"/ui/workspaces/rg/ws/experiments/exp/jobs/tab{i}")
        expect(page.locator(".log-status")).not_to_have_text("connecting…", timeout=60_000)
        pages.append(page)
    # the 2-node cluster runs two jobs at a time, each until its gate opens: the last waits,
    # and its page says so
    last = pages[-1]
    expect(last.locator("#summary .state")).to_have_text("queued")
    expect(last.locator("#summary .waiting")).to_have_text("waiting for nodes")
    expect(last.locator(".log-status")).to_have_text("queued: waiting for nodes")
    # closed pages leave the shared stream (it is opened again for the others)
    for page in pages[7:9]:
        page.close()
    kept = [(i, page) for i, page in enumerate(pages) if i not in (7, 8)]
    for i in range(TABS):
        (gates / f"go{i}").touch()
    for i, page in kept:
        expect(page.locator(".log .line").nth(1)).to_have_text("new line", timeout=120_000)
        expect(page.locator(".log-status")).to_have_text(re.compile("^complete"), timeout=30_000)
        expect(page.locator("#summary .state")).to_have_text("succeeded")  # without a reload
        # each line once: the stream was opened again at every page opened or closed
        assert [line for line in lines(page) if line] == [f"started {i}", "new line"]
    assert own == []
    # and the other pages still answer: the explorer is not frozen
    extra = context.new_page()
    extra.goto("/ui/storage")
    expect(extra.locator("h1")).to_have_text("Storage accounts")


def test_a_browser_without_shared_workers_follows_each_page_on_its_own(
    chromium: Browser, server: Server, jobs: Jobs, gates: Path
) -> None:
    """Chrome on Android has no SharedWorker: each page holds its own stream, as before."""
    from playwright.sync_api import expect

    jobs.create("alone", "echo started\n" + wait_for_trigger(gates, "go") + "echo new line\n")
    own = chromium.new_context(base_url=server.url)
    try:
        own.add_init_script("delete window.SharedWorker")
        page = own.new_page()
        streams: list[str] = []
        page.on("request", lambda r: streams.append(r.url) if "/ui/live?" in r.url else None)
        log_in(page, server.token)
        page.goto("/ui/workspaces/rg/ws/experiments/exp/jobs/alone")
        expect(page.locator(".log .line").first).to_have_text("started", timeout=60_000)
        (gates / "go").touch()
        expect(page.locator(".log-status")).to_have_text(re.compile("^complete"), timeout=60_000)
        assert [line for line in lines(page) if line] == ["started", "new line"]
        assert streams  # the page's own (a worker's requests are not the page's)
    finally:
        own.close()

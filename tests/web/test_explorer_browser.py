"""The explorer as users expect it, in a real browser: the open folder is in the URL (Back and
bookmarks work), each metric can be charted on its own axis, and pages fit a phone's width."""

from __future__ import annotations

import re
from typing import Any

import pytest
from api.support import Server
from playwright.sync_api import BrowserContext

from . import test_browser
from .test_browser import Jobs, job_page, log_in, watch

# the browser tests' fixtures: Chromium, a real ``bai serve``, a context, jobs through the API
chromium, server, context, jobs = (
    test_browser.chromium,
    test_browser.server,
    test_browser.context,
    test_browser.jobs,
)

pytestmark = pytest.mark.browser

JOB = "/ui/workspaces/rg/ws/experiments/exp/jobs/"


def folder_of(page: Any) -> str:
    return str(page.locator("#explorer nav.path").inner_text()).strip()


def test_the_open_folder_is_in_the_url_for_back_and_bookmarks(
    context: BrowserContext, server: Server, jobs: Jobs
) -> None:
    from playwright.sync_api import expect

    jobs.create(
        "tree",
        'mkdir -p "$AZ_BATCHAI_OUTPUT_MODEL/sub/deep"\n'
        'echo c > "$AZ_BATCHAI_OUTPUT_MODEL/sub/deep/c.txt"\n',
    )
    jobs.wait("tree", ("succeeded",))
    page, problems = job_page(context, server, "tree")
    explorer = page.locator("#explorer")
    expect(explorer.get_by_role("link", name="stdout.txt")).to_be_visible()
    page.locator(".outputs nav.tabs").get_by_role("link", name="MODEL").click()
    expect(page).to_have_url(re.compile(r"/jobs/tree\?dir=MODEL$"))
    explorer.get_by_role("link", name="sub/").click()
    expect(page).to_have_url(re.compile(r"/jobs/tree\?dir=MODEL&path=sub$"))
    expect(explorer.get_by_role("link", name="deep/")).to_be_visible()

    page.reload()  # the same folder again
    expect(page.locator("#explorer").get_by_role("link", name="deep/")).to_be_visible()
    assert folder_of(page) == "MODEL / sub"

    page.go_back()
    expect(page).to_have_url(re.compile(r"/jobs/tree\?dir=MODEL$"))
    expect(page.locator("#explorer").get_by_role("link", name="sub/")).to_be_visible()
    assert folder_of(page) == "MODEL"
    page.go_back()
    expect(page).to_have_url(re.compile(r"/jobs/tree$"))
    expect(page.locator("#explorer").get_by_role("link", name="stdout.txt")).to_be_visible()

    bookmark = context.new_page()
    bookmark.goto(JOB + "tree?dir=MODEL&path=sub%2Fdeep")
    expect(bookmark.locator("#explorer").get_by_role("link", name="c.txt")).to_be_visible()
    assert folder_of(bookmark) == "MODEL / sub / deep"
    assert problems == []


def scales(page: Any) -> dict[str, str]:
    """Each metric's scale in the chart (uPlot draws the axes' labels on its canvas)."""
    found = page.evaluate(
        "() => document.querySelector('[data-metrics]').metricsChart.plot.series.slice(1)"
        ".map((s) => [s.label, s.scale])"
    )
    return dict(found)


def test_each_metric_can_be_charted_on_its_own_axis(
    context: BrowserContext, server: Server, jobs: Jobs
) -> None:
    from playwright.sync_api import expect

    jobs.create(
        "scales",
        "echo 'metric: loss=0.02 acc=91 step=1'\necho 'metric: loss=0.01 acc=95 step=2'\n",
    )
    jobs.wait("scales", ("succeeded",))
    page, problems = job_page(context, server, "scales")
    axes = page.locator(".metrics .chart .u-axis")
    expect(axes).to_have_count(2)  # step, and the one y axis both share
    own = page.get_by_role("checkbox", name="chart acc on its own axis")
    own.check()
    expect(axes).to_have_count(3)
    assert scales(page) == {"loss": "y", "acc": "own:acc"}
    page.get_by_role("checkbox", name="chart loss on its own axis").check()
    expect(axes).to_have_count(3)  # each on its own: no shared axis left
    assert scales(page) == {"loss": "own:loss", "acc": "own:acc"}
    own.uncheck()
    expect(axes).to_have_count(3)
    assert scales(page) == {"loss": "own:loss", "acc": "y"}
    assert problems == []


def test_pages_fit_a_phone_without_widening_the_page(
    context: BrowserContext, server: Server, jobs: Jobs
) -> None:
    from playwright.sync_api import expect

    jobs.create(
        "a-job-with-a-rather-long-name-for-a-phone",
        "echo 'metric: loss=0.5 step=1'\n"
        'echo "$(printf "word%.0s " $(seq 1 200))"\n'
        'echo x > "$AZ_BATCHAI_OUTPUT_MODEL/a-file-with-a-long-name-that-does-not-wrap.txt"\n',
    )
    jobs.wait("a-job-with-a-rather-long-name-for-a-phone", ("succeeded",))
    page = context.new_page()
    problems = watch(page)
    page.set_viewport_size({"width": 375, "height": 740})
    log_in(page, server.token)
    name = "a-job-with-a-rather-long-name-for-a-phone"
    pages = {
        "/ui/workspaces": "Workspaces",
        "/ui/workspaces/rg/ws/experiments/exp": "Experiment exp",
        "/ui/workspaces/rg/ws/clusters": None,
        "/ui/storage": "Storage accounts",
        JOB + name: f"Job {name}",
        JOB + name + "?dir=MODEL": f"Job {name}",
        JOB + name + "/files/stdouterr/view?path=stdout.txt": "stdout.txt",
        "/ui/workspaces/rg/ws/experiments/nope": "Error 404",
    }
    for url, title in pages.items():
        page.goto(url)
        if title:
            expect(page.locator("h1")).to_have_text(title)
        if "/jobs/" in url:
            expect(page.locator(".log-status")).to_have_text(re.compile("^complete"))
        if "dir=MODEL" in url:
            expect(page.locator("#explorer table.files")).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        wide = page.evaluate(
            "() => Array.from(document.querySelectorAll('body *'))"
            ".filter((e) => e.getBoundingClientRect().right > 376)"
            ".map((e) => e.tagName + '.' + e.className).slice(0, 8)"
        )
        assert width <= 375, f"{url} is {width} px wide: {wide}"
    assert problems == []

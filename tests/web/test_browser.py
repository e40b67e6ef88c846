"""The explorer in a real browser: Debian's Chromium under Playwright, against a real
``bai serve`` on a free port of 127.0.0.1, logged in through the form like a user."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api.support import Arm, Server, start_server
from playwright.sync_api import Browser, BrowserContext

from openbai.installation import App
from openbai.settings import Settings

from .browser import launch, require_chromium
from .conftest import install, job_body

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def server(bai: Any) -> Iterator[Server]:
    app = App.open(Settings.load(bai.env))
    try:
        install(app)
    finally:
        app.close()
    running = start_server(bai.home, bai.env)
    yield running
    running.stop()


class Jobs:
    """Jobs made through the server's REST API, as a user's script would."""

    def __init__(self, server: Server, tmp_path: Path) -> None:
        self.server = server
        self.arm = Arm(server.subscription)
        self.tmp = tmp_path
        self.created: list[str] = []

    def url(self, name: str, *action: str) -> str:
        return self.arm.rg("workspaces", "ws", "experiments", "exp", "jobs", name, *action)

    def terminate(self, name: str) -> None:
        with self.server.client() as client:
            response = client.post(self.url(name, "terminate"))
            assert response.status_code in (200, 202), response.text

    def create(self, name: str, script: str) -> None:
        path = self.tmp / f"{name}.sh"
        path.write_text(script)
        with self.server.client() as client:
            response = client.put(self.url(name), json=job_body(f"bash {path}"))
            assert response.status_code == 200, response.text
        self.created.append(name)

    def stop_all(self) -> None:
        """Terminate the jobs still running (a failed test leaves none behind)."""
        for name in self.created:
            if self.get(name).status_code == 200:
                self.terminate(name)
                self.wait(name, ("succeeded", "failed"), timeout=30)

    def get(self, name: str) -> Any:
        with self.server.client() as client:
            return client.get(self.url(name))

    def state(self, name: str) -> str:
        return str(self.get(name).json()["properties"]["executionState"])

    def wait(self, name: str, states: tuple[str, ...], timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while (state := self.state(name)) not in states:
            assert time.monotonic() < deadline, f"job {name} still {state}"
            time.sleep(0.1)
        return state


@pytest.fixture
def jobs(server: Server, gates: Path) -> Iterator[Jobs]:
    # the scripts go where a sandboxed job can read them (it sees no host temp directory)
    made = Jobs(server, gates)
    yield made
    made.stop_all()


class Problems(list[str]):
    """Script errors and console errors (a CSP violation is one) seen by a page; HTTP
    errors are left to the tests' own checks (a wrong token answers 401)."""


@pytest.fixture
def context(chromium: Browser, server: Server) -> Iterator[BrowserContext]:
    context = chromium.new_context(base_url=server.url, accept_downloads=True)
    yield context
    context.close()  # before the server stops: no event stream is left open


def watch(page: Any) -> Problems:
    problems = Problems()
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if message.type == "error" and not message.text.startswith("Failed to load resource")
            else None
        ),
    )
    return problems


def log_in(page: Any, token: str) -> None:
    from playwright.sync_api import expect

    page.goto("/ui/workspaces")
    expect(page).to_have_url(re.compile(r"/ui/login\?next=%2Fui%2Fworkspaces$"))
    page.fill("#token", token)
    page.click("form button[type=submit]")
    expect(page.locator("h1")).to_have_text("Workspaces")


def open_job(page: Any, name: str) -> None:
    """Workspaces → ws → exp → the job, by clicking, as a user would."""
    from playwright.sync_api import expect

    page.goto("/ui/workspaces")
    page.get_by_role("link", name="ws", exact=True).click()
    page.get_by_role("link", name="exp", exact=True).click()
    page.get_by_role("link", name=name, exact=True).click()
    expect(page.locator("h1")).to_have_text(f"Job {name}")


def job_page(context: BrowserContext, server: Server, name: str) -> tuple[Any, Problems]:
    """A new page, logged in, on job ``name``; what goes wrong in it is in the problems."""
    page = context.new_page()
    problems = watch(page)
    log_in(page, server.token)
    open_job(page, name)
    return page, problems


def lines(page: Any) -> list[str]:
    return [str(t) for t in page.locator(".log .line").all_inner_texts()]


def wait_for_trigger(gates: Path, name: str) -> str:
    """A line of a job script: wait (a minute at most) until the test creates the file (in
    the ``gates`` directory, which a sandboxed job sees)."""
    return f'for i in $(seq 3000); do [ -e "{gates / name}" ] && break; sleep 0.02; done\n'


# -- tests ------------------------------------------------------------------------------------
def test_log_in_with_a_token_and_out_again(context: BrowserContext, server: Server) -> None:
    from playwright.sync_api import expect

    page = context.new_page()
    problems = watch(page)
    page.goto("/ui/workspaces")
    page.fill("#token", "bai_not-a-token")
    page.click("form button[type=submit]")
    expect(page.get_by_role("alert")).to_have_text("That token is not valid.")

    log_in(page, server.token)
    (cookie,) = context.cookies()
    assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (
        "openbai_session",
        True,
        "Lax",
        "/ui",
    )
    assert page.evaluate("document.cookie") == ""  # page scripts cannot read the token

    page.get_by_role("button", name="Log out").click()
    expect(page.locator("h1")).to_have_text("Log in")
    page.goto("/ui/storage")
    expect(page.locator("h1")).to_have_text("Log in")
    assert problems == []


def test_a_line_the_job_prints_shows_within_a_second(
    context: BrowserContext, server: Server, jobs: Jobs, gates: Path
) -> None:
    from playwright.sync_api import expect

    jobs.create(
        "live",
        "echo started\n"
        + wait_for_trigger(gates, "go1")
        + "echo 'tick 1'\n"
        + wait_for_trigger(gates, "go2")
        + "printf 'progress 10%%\\rprogress 50%%\\rprogress 100%%\\n'\n"
        + "echo 'metric: loss=0.9 step=1'\n"
        + "echo 'metric: loss=0.5 acc=0.75 step=2'\n"
        + "head -c 300000 /dev/zero | tr '\\0' x; echo\n"
        + wait_for_trigger(gates, "go3")
        + "echo done\n",
    )
    page, problems = job_page(context, server, "live")
    log = page.locator(".live .log")
    expect(log.locator(".line", has_text="started")).to_have_count(1, timeout=30_000)
    expect(page.locator(".log-status")).to_have_text("following")

    (gates / "go1").touch()  # shown without a reload: how soon is 'python -m bench local'
    log.locator(".line", has_text="tick 1").wait_for(timeout=30_000)

    (gates / "go2").touch()
    expect(log.locator(".line", has_text="progress")).to_have_text("progress 100%")
    long_line = log.locator(".line", has_text="xxxx")
    expect(long_line).to_have_count(1)
    # the line may arrive in several events: wait for all of it, in one line
    long_line.evaluate(
        "(line) => new Promise((done) => { const check = () => "
        "line.textContent.length >= 300000 ? done() : setTimeout(check, 50); check(); })"
    )
    assert len(long_line.inner_text()) == 300_000
    latest = page.locator(".metrics table.latest")
    expect(latest.locator("tr[data-metric=loss] td")).to_have_text(["loss", "0.5", "2", ""])
    expect(latest.locator("tr[data-metric=acc] td")).to_have_text(["acc", "0.75", "2", ""])
    expect(page.locator(".metrics .chart canvas")).to_have_count(1)

    (gates / "go3").touch()
    expect(log.locator(".line", has_text="done")).to_have_count(1)
    expect(page.locator(".log-status")).to_have_text(re.compile(r"^complete"), timeout=15_000)
    expect(page.locator("#summary .state")).to_have_text("succeeded", timeout=15_000)
    assert lines(page)[:2] == ["started", "tick 1"]
    page.get_by_role("tab", name="stderr.txt").click()
    expect(page.locator(".log-status")).to_have_text(re.compile(r"^complete"))
    assert problems == []


def test_open_an_output_file_and_download_it(
    context: BrowserContext, server: Server, jobs: Jobs
) -> None:
    from playwright.sync_api import expect

    jobs.create(
        "files",
        'mkdir -p "$AZ_BATCHAI_OUTPUT_MODEL/sub"\n'
        'printf "result 42\\n" > "$AZ_BATCHAI_OUTPUT_MODEL/sub/result.txt"\n',
    )
    jobs.wait("files", ("succeeded",))
    page, problems = job_page(context, server, "files")
    explorer = page.locator("#explorer")
    expect(explorer.get_by_role("link", name="stdout.txt")).to_be_visible()
    page.locator(".outputs nav.tabs").get_by_role("link", name="MODEL").click()
    explorer.get_by_role("link", name="sub/").click()
    row = explorer.locator("tr", has_text="result.txt")
    expect(row.locator("td.num")).to_have_text("10 B")
    row.get_by_role("link", name="result.txt").click()

    expect(page.locator("h1")).to_have_text("result.txt")
    expect(page.locator(".log .line").first).to_have_text("result 42")
    expect(page.locator(".log-status")).to_have_text(re.compile(r"^complete"))
    with page.expect_download() as download:
        page.get_by_role("link", name="Download").click()
    assert download.value.suggested_filename == "result.txt"
    assert Path(download.value.path()).read_bytes() == b"result 42\n"
    assert problems == []


def test_the_explorer_of_a_running_job_shows_new_files_without_a_reload(
    context: BrowserContext, server: Server, jobs: Jobs, gates: Path
) -> None:
    from playwright.sync_api import expect

    jobs.create(
        "writer",
        'mkdir -p "$AZ_BATCHAI_OUTPUT_MODEL/ckpt"\n'
        + wait_for_trigger(gates, "go")
        + 'echo step1 > "$AZ_BATCHAI_OUTPUT_MODEL/ckpt/step-1.txt"\n'
        + wait_for_trigger(gates, "end"),
    )
    jobs.wait("writer", ("running",))
    page, problems = job_page(context, server, "writer")
    explorer = page.locator("#explorer")
    page.locator(".outputs nav.tabs").get_by_role("link", name="MODEL").click()
    explorer.get_by_role("link", name="ckpt/").click()
    expect(explorer.locator("p.empty")).to_be_visible()

    (gates / "go").touch()
    expect(explorer.get_by_role("link", name="step-1.txt")).to_be_visible(timeout=15_000)
    expect(explorer.locator("nav.path")).to_have_text("MODEL / ckpt")  # still in the folder

    (gates / "end").touch()
    expect(page.locator("#summary .state")).to_have_text("succeeded", timeout=30_000)
    assert problems == []


def test_the_metrics_chart_follows_the_width_of_the_window(
    context: BrowserContext, server: Server, jobs: Jobs
) -> None:
    from playwright.sync_api import expect

    jobs.create("plot", "echo 'metric: loss=0.9 step=1'\necho 'metric: loss=0.4 step=2'\n")
    jobs.wait("plot", ("succeeded",))
    page = context.new_page()
    problems = watch(page)
    page.set_viewport_size({"width": 1200, "height": 900})
    log_in(page, server.token)
    open_job(page, "plot")
    canvas = page.locator(".metrics .chart canvas")
    expect(canvas).to_have_count(1)
    wide_box = canvas.bounding_box()
    assert wide_box is not None
    wide = wide_box["width"]

    page.set_viewport_size({"width": 700, "height": 900})
    box = page.locator(".metrics .chart")
    page.wait_for_function(
        "(box) => box.querySelector('canvas').getBoundingClientRect().width <= box.clientWidth",
        arg=box.element_handle(),
    )
    narrow_box = canvas.bounding_box()
    assert narrow_box is not None
    narrow = narrow_box["width"]
    assert narrow < wide
    assert narrow <= 700
    assert problems == []


def test_terminate_a_job_after_confirming(
    context: BrowserContext, server: Server, jobs: Jobs
) -> None:
    from playwright.sync_api import expect

    jobs.create("sleeper", "echo sleeping\nsleep 600\n")
    jobs.wait("sleeper", ("running",))
    page, problems = job_page(context, server, "sleeper")
    expect(page.locator("#summary .state")).to_have_text("running")

    asked: list[str] = []

    def answer(accept: bool) -> Any:
        def handle(dialog: Any) -> None:
            asked.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        return handle

    page.once("dialog", answer(False))
    page.get_by_role("button", name="Terminate").click()
    assert asked == ["Terminate job sleeper? Its processes are stopped; its output files are kept."]
    assert jobs.state("sleeper") == "running"

    page.once("dialog", answer(True))
    page.get_by_role("button", name="Terminate").click()
    # the job's end first, then the page's: a slow end and a page that missed it differ
    assert jobs.wait("sleeper", ("succeeded", "failed"), timeout=60) == "failed"
    expect(page.locator("#summary .state")).to_have_text("failed")
    errors = jobs.get("sleeper").json()["properties"]["executionInfo"]["errors"]
    assert [e["code"] for e in errors] == ["JobTerminated"], errors  # the message says which end
    expect(page.locator(".log-status")).to_have_text(re.compile(r"^complete"))
    assert problems == []


def test_the_summary_shows_an_end_that_came_while_it_was_loading(
    context: BrowserContext, server: Server, jobs: Jobs
) -> None:
    """Terminated from elsewhere, a job the page shows running becomes terminating, then
    failed: the second change arrives while the summary of the first is still loading."""
    from playwright.sync_api import Route, expect

    # a job that takes its time to stop (within the grace before SIGKILL), so that the page
    # sees it terminating
    jobs.create("sleeper", "trap 'sleep 4; exit 1' TERM\necho sleeping\nsleep 600 &\nwait\n")
    jobs.wait("sleeper", ("running",))
    page, problems = job_page(context, server, "sleeper")
    summary = page.locator("#summary")
    expect(summary.locator(".state")).to_have_text("running")

    held: list[Route] = []
    page.route("**/summary", lambda route: route.continue_() if held else held.append(route))
    jobs.terminate("sleeper")
    stale = page.request.get(str(summary.get_attribute("data-src")))
    assert 'data-state="terminating"' in stale.text()
    expect(summary).to_have_attribute("data-state", "terminating")
    deadline = time.monotonic() + 30
    while not held:  # the page asked for the terminating job's summary; it gets it late
        assert time.monotonic() < deadline, "the page never asked for the summary"
        page.wait_for_timeout(20)
    assert jobs.wait("sleeper", ("succeeded", "failed"), timeout=60) == "failed"
    expect(summary).to_have_attribute("data-state", "failed")
    held[0].fulfill(response=stale)
    expect(summary.locator(".state")).to_have_text("failed")
    expect(summary.locator(".exit-code")).to_have_text("143")
    assert problems == []


def test_delete_a_job_after_confirming(context: BrowserContext, server: Server, jobs: Jobs) -> None:
    from playwright.sync_api import expect

    jobs.create("old", "echo old\n")
    jobs.wait("old", ("succeeded",))
    page, problems = job_page(context, server, "old")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete").click()
    expect(page.locator("h1")).to_have_text("Experiment exp")
    # shown "deleting" until it is gone; the list refreshes itself meanwhile
    expect(page.get_by_role("link", name="old", exact=True)).to_have_count(0, timeout=15_000)
    assert jobs.get("old").status_code == 404
    assert problems == []


XSS_NAME = "<script>pwned(1)<img src=x onerror=pwned(2)>.txt"
XSS_LINE = "<script>pwned(3)</script><img src=x onerror=pwned(4)>"


def test_deleting_a_running_job_answers_at_once_and_shows_it_deleting(
    context: BrowserContext, server: Server, jobs: Jobs
) -> None:
    from playwright.sync_api import expect

    jobs.create("busy", "echo busy\nsleep 600\n")
    jobs.wait("busy", ("running",))
    page, problems = job_page(context, server, "busy")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete").click()
    expect(page.locator("h1")).to_have_text("Experiment exp")
    row = page.locator("table.jobs tr", has_text="busy")
    expect(row.locator(".state")).to_have_text("deleting")
    expect(row).to_have_count(0, timeout=30_000)
    assert jobs.get("busy").status_code == 404
    assert problems == []


def test_markup_in_file_names_and_log_lines_is_shown_as_text(
    chromium: Browser, server: Server, jobs: Jobs
) -> None:
    """With the Content Security Policy bypassed, so escaping alone has to hold."""
    from playwright.sync_api import expect

    jobs.create(
        "xss",
        f"echo '{XSS_LINE}'\n" + f'echo data > "$AZ_BATCHAI_OUTPUT_MODEL/{XSS_NAME}"\n',
    )
    jobs.wait("xss", ("succeeded",))
    context = chromium.new_context(base_url=server.url, bypass_csp=True)
    try:
        context.add_init_script("window.pwned = (n) => { (window.__pwned ||= []).push(n); };")
        page = context.new_page()
        dialogs: list[str] = []

        def on_dialog(dialog: Any) -> None:
            dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        log_in(page, server.token)
        open_job(page, "xss")
        expect(page.locator(".log .line").first).to_have_text(XSS_LINE)
        page.locator(".outputs nav.tabs").get_by_role("link", name="MODEL").click()
        link = page.locator("#explorer").get_by_role("link", name=XSS_NAME)
        expect(link).to_have_text(XSS_NAME)
        link.click()
        expect(page.locator("h1")).to_have_text(XSS_NAME)
        expect(page.locator(".log .line").first).to_have_text("data")
        assert page.evaluate("window.__pwned === undefined")
        assert page.locator("img").count() == 0
        assert dialogs == []
    finally:
        context.close()

"""A job's HTML and SVG outputs opened in a real browser (Debian's Chromium under Playwright,
against a real ``bai serve``), through every link and page that leads to them: the API's
signed download link, the explorer's file view, its download and its picture. Their scripts
would fetch ``/script-ran`` and retitle the page; none may run."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api.support import Arm, wait_for_job

from .test_browser import chromium, context, log_in, server  # noqa: F401  (fixtures)
from .user_content import BEACON, write_outputs

pytestmark = pytest.mark.browser

J = "/ui/workspaces/rg/ws/experiments/exp/jobs/u"


@pytest.fixture
def links(server: Any, tmp_path: Path) -> Iterator[dict[str, str]]:  # noqa: F811
    """Job ``u`` wrote the hostile outputs into MODEL; their signed download links by name."""
    from .conftest import job_body

    arm = Arm(server.subscription)
    job = arm.rg("workspaces", "ws", "experiments", "exp", "jobs", "u")
    with server.client() as api:
        body = job_body(write_outputs())
        assert api.put(job, json=body).status_code == 200, body
        assert wait_for_job(api, job)["properties"]["executionState"] == "succeeded"
        listed = api.post(job.replace("?", "/listOutputFiles?") + "&outputdirectoryid=MODEL")
        yield {
            f["name"]: f["downloadUrl"] for f in listed.json()["value"] if f["fileType"] == "file"
        }


def saved(page: Any, url: str) -> None:
    """Open ``url`` as a user would; the browser must save the file, not show it (else the
    wait for a download times out)."""
    from playwright.sync_api import Error

    with page.expect_download(timeout=15_000) as download:
        with contextlib.suppress(Error):  # the navigation that became a download is aborted
            page.goto(url)
    download.value.cancel()


def test_no_script_of_a_jobs_html_or_svg_runs_anywhere(
    context: Any,  # noqa: F811
    server: Any,  # noqa: F811
    links: dict[str, str],
) -> None:
    from playwright.sync_api import expect

    beacons: list[str] = []
    context.on("request", lambda r: beacons.append(r.url) if BEACON in r.url else None)
    page = context.new_page()
    log_in(page, server.token)

    for name in ("report.html", "plot.svg"):
        saved(page, links[name])
        saved(page, f"{J}/files/MODEL/download?path={name}")
        page.goto(f"{J}/files/MODEL/view?path={name}")
        expect(page.locator(".log")).to_contain_text("<script>")  # its text, as text
        assert page.title() != "PWNED"
    # the SVG is shown as a picture in its view, and as a sandboxed page of its own
    page.goto(f"{J}/files/MODEL/view?path=plot.svg")
    picture = page.locator("figure.picture img")
    picture.wait_for()
    assert (
        page.evaluate("(img) => img.complete && img.naturalWidth", picture.element_handle()) == 40
    )
    shown = page.goto(f"{J}/files/MODEL/picture?path=plot.svg")
    assert shown is not None and shown.headers["content-type"] == "image/svg+xml"
    page.locator("rect").wait_for()  # rendered, as a document
    assert page.title() != "PWNED"
    page.goto(f"{J}/files/MODEL")  # a last page load: any late request has been made by now
    assert beacons == []

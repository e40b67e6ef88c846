"""The pages: workspaces → experiments → jobs (filtered, paged), clusters, storage, a job."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from openbai.installation import App
from openbai.services import workspaces
from openbai.store.models import Cluster, Experiment, Job

from .conftest import JOB_URL, TestClient


def cells(html: str, css_class: str) -> list[str]:
    """The text of every ``<span class="... css_class ...">`` (states in a job table)."""
    return re.findall(rf'<span class="[^"]*\b{css_class}\b[^"]*">([^<]*)</span>', html)


def job_names(html: str) -> list[str]:
    return re.findall(
        r'<a href="/ui/workspaces/rg/ws/experiments/exp/jobs/[^"]+">([^<]+)</a>', html
    )


def test_workspaces_lead_to_experiments_and_clusters(web: TestClient, installation: App) -> None:
    workspaces.create_workspace(installation, "other", "ws2")
    page = web.get("/ui/workspaces")
    assert page.status_code == 200
    assert '<a href="/ui/workspaces/rg/ws">ws</a>' in page.text
    assert '<a href="/ui/workspaces/other/ws2">ws2</a>' in page.text
    experiments = web.get("/ui/workspaces/rg/ws")
    assert '<a href="/ui/workspaces/rg/ws/experiments/exp">exp</a>' in experiments.text
    assert web.get("/ui/workspaces/rg/nope").status_code == 404


def test_clusters_show_node_state_counts(web: TestClient, run_job: Callable[..., str]) -> None:
    run_job("busy", "sleep 600", wait=False)
    deadline = time.monotonic() + 30
    while True:
        page = web.get("/ui/workspaces/rg/ws/clusters")
        counts = re.findall(r'<td class="num node-(\w+)">(\d+)</td>', page.text)
        if dict(counts).get("running") == "1" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert dict(counts) == {
        "idle": "1",
        "running": "1",
        "preparing": "0",
        "unusable": "0",
        "leaving": "0",
    }


def test_storage_lists_accounts_with_their_containers_and_shares(
    web: TestClient, installation: App
) -> None:
    from openbai.services import accounts
    from openbai.storage.base import VolumeKind

    accounts.create_volume(installation, "acct", VolumeKind.BLOB, "data")
    page = web.get("/ui/storage")
    row = page.text[page.text.index("<td>acct</td>") :].split("</tr>")[0]
    assert "<li>data</li>" in row and "<li>logs</li>" in row


def add_jobs(app: App, count: int, *, state: str) -> None:
    """``count`` finished jobs in experiment ``exp``, written in one go (not run)."""
    with app.db.session() as s:
        experiment = s.scalar(select(Experiment).where(Experiment.name == "exp"))
        cluster = s.scalar(select(Cluster).where(Cluster.name == "c1"))
        assert experiment is not None and cluster is not None
        rows = [
            {
                "experiment_id": experiment.id,
                "name": f"{state}-{i:05d}",
                "uid": str(uuid.uuid4()),
                "spec": {"nodeCount": 1},
                "cluster_ref": f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.BatchAI/workspaces/ws/clusters/{cluster.name}",
                "cluster_id": cluster.id,
                "tool_type": "custom",
                "output_segment": "x",
                "execution_state": state,
                "exit_code": 0 if state == "succeeded" else 1,
            }
            for i in range(count)
        ]
        s.execute(insert(Job), rows)


def test_jobs_are_filtered_by_state_and_paged(web: TestClient, installation: App) -> None:
    add_jobs(installation, 120, state="succeeded")
    add_jobs(installation, 7, state="failed")
    page = web.get("/ui/workspaces/rg/ws/experiments/exp")
    assert "jobs 1–50 of 127" in page.text
    assert "succeeded (120)" in page.text and "failed (7)" in page.text
    assert job_names(page.text)[:2] == ["failed-00006", "failed-00005"]  # newest first
    assert 'rel="next"' in page.text and "page 1 of 3" in page.text

    last = web.get("/ui/workspaces/rg/ws/experiments/exp?page=3")
    assert "jobs 101–127 of 127" in last.text and 'rel="next"' not in last.text
    assert job_names(last.text)[-1] == "succeeded-00000"
    # pages of another order keep it
    by_state = web.get("/ui/workspaces/rg/ws/experiments/exp?sort=-state&page=2").text
    assert (
        'href="/ui/workspaces/rg/ws/experiments/exp?sort=-state&amp;page=3" rel="next"' in by_state
    )
    assert set(cells(by_state, "state")) == {"succeeded"}  # the 7 failed came first

    failed = web.get("/ui/workspaces/rg/ws/experiments/exp?state=failed")
    assert set(cells(failed.text, "state")) == {"failed"}
    assert len(job_names(failed.text)) == 7
    assert web.get("/ui/workspaces/rg/ws/experiments/exp?state=bogus").status_code == 400
    fragment = web.get("/ui/workspaces/rg/ws/experiments/exp", headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith("{#") is False
    assert "<html" not in fragment.text and 'id="jobs"' in fragment.text


def add_timed_jobs(app: App, jobs: list[tuple[str, str, float | None, float | None]]) -> None:
    """Jobs (name, state, start and end in seconds after 2024-01-01 or None), in this order."""
    base = datetime(2024, 1, 1, tzinfo=UTC)
    with app.db.session() as s:
        experiment = s.scalar(select(Experiment).where(Experiment.name == "exp"))
        cluster = s.scalar(select(Cluster).where(Cluster.name == "c1"))
        assert experiment is not None and cluster is not None
        for name, state, start, end in jobs:
            s.add(
                Job(
                    experiment_id=experiment.id, name=name, uid=str(uuid.uuid4()),
                    spec={"nodeCount": 1}, cluster_ref=f"/clusters/{cluster.name}",
                    cluster_id=cluster.id, tool_type="custom", output_segment="x",
                    execution_state=state, node_count=3 if state == "queued" else 1,
                    start_time=None if start is None else base + timedelta(seconds=start),
                    end_time=None if end is None else base + timedelta(seconds=end),
                )
            )  # fmt: skip
            s.flush()  # ids in this order


@pytest.mark.parametrize(
    ("sort", "order"),
    [
        (None, ["d", "c", "b", "a"]),  # newest first
        ("created", ["a", "b", "c", "d"]),
        ("state", ["d", "c", "a", "b"]),  # queued, succeeded, failed; then newest first
        ("-state", ["b", "c", "a", "d"]),
        ("start", ["a", "b", "c", "d"]),  # not started: last either way
        ("-start", ["c", "b", "a", "d"]),
        ("duration", ["b", "a", "c", "d"]),
        ("-duration", ["c", "a", "b", "d"]),
    ],
)
def test_jobs_are_sorted_by_the_store_and_the_links_keep_the_order(
    web: TestClient, installation: App, sort: str | None, order: list[str]
) -> None:
    # no job the dispatcher would start or look after: d needs 3 nodes of a 2-node cluster
    add_timed_jobs(
        installation,
        [("a", "succeeded", 0, 100), ("b", "failed", 50, 60), ("c", "succeeded", 200, 5000),
         ("d", "queued", None, None)],
    )  # fmt: skip
    url = "/ui/workspaces/rg/ws/experiments/exp"
    page = web.get(url, params={"sort": sort} if sort else {}).text
    assert job_names(page) == order
    assert re.search(r'<td class="num">1m 40s</td>', page)  # a's duration
    kept = f"sort={sort}" if sort else None
    filters = re.findall(r'<nav class="filter".*?</nav>', page, re.S)[0]
    assert all(
        (kept in link) if kept else ("sort=" not in link)
        for link in re.findall(r'href="([^"]*)"', filters)
    )
    column = (sort or "-created").removeprefix("-")
    (header,) = re.findall(
        rf'<th[^>]*aria-sort="(\w+)"[^>]*><a href="([^"]*)" class="sort" data-column="{column}"',
        page,
    )
    assert header[0] == ("descending" if (sort or "-created").startswith("-") else "ascending")
    again = web.get(header[1].replace("&amp;", "&")).text  # the header reverses the order
    reversed_aria = "ascending" if header[0] == "descending" else "descending"
    assert f'aria-sort="{reversed_aria}"><a href' in again


def test_an_unknown_order_is_refused_naming_the_field(web: TestClient, installation: App) -> None:
    response = web.get("/ui/workspaces/rg/ws/experiments/exp?sort=size")
    assert response.status_code == 400 and "sort" in response.text


def test_ten_thousand_jobs_are_paged(web: TestClient, installation: App) -> None:
    add_jobs(installation, 10_000, state="succeeded")
    # how fast these pages are is measured by 'python -m bench api'
    for url in ("", "?page=100", "?page=200", "?state=succeeded&page=150", "?state=running"):
        assert web.get("/ui/workspaces/rg/ws/experiments/exp" + url).status_code == 200, url
    assert (
        "jobs 9951–10000 of 10000" in web.get("/ui/workspaces/rg/ws/experiments/exp?page=200").text
    )


def test_a_job_page_shows_its_state_spec_and_secret_names_only(
    web: TestClient, run_job: Callable[..., str]
) -> None:
    secrets = [{"name": "API_KEY", "value": "hunter2-very-secret"}]
    assert run_job("j", "echo $API_KEY > /dev/null; exit 3", secrets=secrets) == "failed"
    page = web.get(JOB_URL + "/j")
    assert page.status_code == 200
    assert '<span class="state state-failed">failed</span>' in page.text
    assert '<dd class="exit-code">3</dd>' in page.text
    assert '<code class="secret">API_KEY</code>' in page.text
    assert "hunter2" not in page.text
    assert "bash" not in page.text or "customToolkitSettings" in page.text
    # no terminate button once ended; delete stays
    assert "/terminate" not in page.text and "/delete" in page.text


def test_the_environment_is_read_from_the_execution_log(
    web: TestClient, run_job: Callable[..., str]
) -> None:
    run_job("j", "true")
    fragment = web.get(JOB_URL + "/j/environment", headers={"HX-Request": "true"})
    names = re.findall(r'<th scope="row"><code>(AZ_BATCHAI_\w+)</code>', fragment.text)
    assert {"AZ_BATCHAI_OUTPUT_MODEL", "AZ_BATCHAI_STDOUTERR_DIR", "AZ_BATCHAI_JOB_TEMP"} <= set(
        names
    )
    assert "execution.log" in fragment.text


def test_a_queued_job_has_no_environment_yet(web: TestClient, run_job: Callable[..., str]) -> None:
    run_job("hog", "sleep 600", wait=False, nodeCount=2)
    run_job("waiting", "true", wait=False)  # queued while hog holds both nodes
    fragment = web.get(JOB_URL + "/waiting/environment", headers={"HX-Request": "true"})
    assert "has not started" in fragment.text and 'hx-trigger="load delay:2s"' in fragment.text
    summary = web.get(JOB_URL + "/waiting/summary", headers={"HX-Request": "true"})
    assert "waiting for nodes" in summary.text and "/terminate" in summary.text
    # fetched again when the page's live view says the state changed (no polling)
    assert 'data-state="queued"' in summary.text and "hx-trigger" not in summary.text


def test_unknown_things_are_404_pages(web: TestClient, installation: App) -> None:
    for url in (JOB_URL + "/nope", "/ui/workspaces/rg/ws/experiments/nope", "/ui/nothing"):
        page = web.get(url)
        assert page.status_code == 404 and "<h1>Error 404</h1>" in page.text, url
        # the navigation stays: the way on, and Log out
        assert 'href="/ui/storage"' in page.text and 'action="/ui/logout"' in page.text, url


def test_the_jobs_list_shows_durations_and_that_a_queued_job_waits_for_nodes(
    web: TestClient, run_job: Callable[..., str], installation: App
) -> None:
    from .conftest import wait_for

    run_job("hog", "sleep 600", wait=False, nodeCount=2)
    run_job("waiting", "true", wait=False)  # queued while hog holds both nodes
    wait_for(installation, "hog", ("running",))
    html = web.get("/ui/workspaces/rg/ws/experiments/exp").text
    rows = {
        m[1]: row for row in html.split("<tr>")[1:] if (m := re.search(r">(hog|waiting)</a>", row))
    }
    assert "waiting for nodes" in rows["waiting"] and "waiting for nodes" not in rows["hog"]
    assert re.search(r'<td class="num">(\d+s|\d+m \d\ds)</td>', rows["hog"])  # it runs
    assert '<td class="num"></td>' in rows["waiting"]  # not started: no duration


def test_durations_read_as_people_write_them() -> None:
    from openbai.web.templating import duration

    start = "2018-05-01T12:00:00Z"
    assert duration(start, "2018-05-01T12:00:45Z") == "45s"
    assert duration(start, "2018-05-01T12:12:03Z") == "12m 03s"
    assert duration(start, "2018-05-01T15:05:00Z") == "3h 05m"
    assert duration(start, "2018-05-03T16:00:00Z") == "2d 04h"
    assert duration(None, None) == ""

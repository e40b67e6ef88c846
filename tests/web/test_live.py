"""Live views as server-sent events: a file's text as the job writes it, and its metrics."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Bai

from openbai.installation import App
from openbai.services import sessions, tokens
from openbai.web import live
from openbai.web.events import in_thread

from .conftest import JOB_URL, TestClient, wait_for
from .test_sessions_server_side import log_in, session_cookie

J = JOB_URL + "/j"


def parse_events(body: str) -> list[tuple[str, str | None, Any]]:
    """(event name, id, data) of every event in an event-stream body (comments skipped)."""
    found = []
    for block in body.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line and not line.startswith(":"):
                key, _, value = line.partition(": ")
                fields[key] = value
        if "data" in fields:
            found.append(
                (fields.get("event", "message"), fields.get("id"), json.loads(fields["data"]))
            )
    return found


def text_of(events: list[tuple[str, str | None, Any]]) -> str:
    return "".join(str(data) for name, _, data in events if name == "message")


def test_a_file_is_sent_as_text_with_byte_offsets_and_an_end(
    web: TestClient, run_job: Callable[..., str]
) -> None:
    run_job("j", "printf 'a\\rb\\r\\nc\\n'; printf 'é%.0s' $(seq 1 40000); printf '\\nlast'")
    response = web.get(J + "/files/stdouterr/stream?path=stdout.txt")
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-store"
    events = parse_events(response.text)
    expected = "a\rb\r\nc\n" + "é" * 40000 + "\nlast"
    size = len(expected.encode())
    assert text_of(events) == expected  # the 80 KB of two-byte characters cut at no character
    assert events[-1] == ("end", None, {"bytes": size})
    ids = [int(i) for _, i, _ in events if i is not None]
    assert ids == sorted(ids) and ids[-1] == size
    assert all(len(str(d).encode()) <= 64 * 1024 for n, _, d in events if n == "message")


def test_a_browser_that_reconnects_gets_the_rest(
    web: TestClient, run_job: Callable[..., str]
) -> None:
    run_job("j", "printf 'first\\nsecond\\n'")
    response = web.get(
        J + "/files/stdouterr/stream?path=stdout.txt", headers={"Last-Event-ID": "6"}
    )
    assert text_of(parse_events(response.text)) == "second\n"


def test_a_running_jobs_file_is_followed_until_the_job_ends(
    web: TestClient, run_job: Callable[..., str], installation: App
) -> None:
    run_job("j", "echo one; sleep 2; echo two", wait=False)
    wait_for(installation, "j", ("running",))
    response = web.get(J + "/files/stdouterr/stream?path=stdout.txt")  # begun mid-job
    events = parse_events(response.text)
    assert text_of(events) == "one\ntwo\n" and events[-1][0] == "end"


def test_metric_lines_become_points(web: TestClient, run_job: Callable[..., str]) -> None:
    run_job(
        "j",
        "echo 'metric: loss=0.9 step=10'; echo noise; printf 'metric: loss=5\\rmetric: loss=0.5 acc=0.7 step=20\\n';"
        " echo 'metric: lr=1e-3'; echo 'metric: bad=x step=30'",
    )
    events = parse_events(web.get(J + "/metrics").text)
    points = [p for name, _, batch in events if name == "message" for p in batch]
    assert points == [
        {"x": 10, "line": 1, "values": {"loss": 0.9}},
        {"x": 20, "line": 3, "values": {"loss": 0.5, "acc": 0.7}},
        {"x": 4, "line": 4, "values": {"lr": 0.001}},
    ]
    assert events[-1][0] == "end"


@pytest.mark.parametrize("ending", ["logout", "token deleted"])
def test_the_metrics_stream_ends_with_its_session(
    service: App,
    token: str,
    run_job: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    ending: str,
) -> None:
    monkeypatch.setattr(live, "SESSION_CHECK", 0.0)
    run_job("j", "while true; do echo 'metric: loss=1'; sleep 0.1; done", wait=False)
    wait_for(service, "j", ("running",))
    web = log_in(service, token)
    ended, last, deadline = False, "", time.monotonic() + 20
    with web.stream("GET", J + "/metrics") as stream:
        for line in stream.iter_lines():
            assert time.monotonic() < deadline, "the stream goes on"
            if line.startswith("data: [") and not ended:  # the first points
                if ending == "logout":
                    sessions.end_session(service, session_cookie(web))
                else:
                    tokens.delete_token(service, "browser")
                ended = True
            if last == "event: failure":
                assert "the session has ended" in line
                break
            last = line
        else:
            pytest.fail("the stream ended without saying why")


def test_a_folder_cannot_be_streamed(web: TestClient, run_job: Callable[..., str]) -> None:
    run_job("j", 'mkdir -p "$AZ_BATCHAI_OUTPUT_MODEL/sub"')
    assert web.get(J + "/files/MODEL/stream?path=sub").status_code == 400


def test_the_source_thread_stops_when_the_reader_goes_away() -> None:
    stopped = threading.Event()

    def source(stop: Callable[[], bool]) -> Iterator[int]:
        n = 0
        while not stop():
            n += 1
            if n == 1:
                yield n
            time.sleep(0.01)
        stopped.set()

    async def read_one() -> list[int | None]:
        stream = in_thread(source, heartbeat=0.05)
        got = [await stream.__anext__(), await stream.__anext__()]  # an item, then a heartbeat
        await stream.aclose()
        return got

    assert asyncio.run(read_one()) == [1, None]
    assert stopped.wait(2)


def test_bai_serve_stops_promptly_while_a_page_follows_a_running_job(
    bai: Bai, tmp_path: Path
) -> None:
    import httpx
    from api.support import start_server

    from openbai.installation import App
    from openbai.services import jobs
    from openbai.settings import Settings

    from .conftest import install, job_body, stop_jobs, wait_for

    app = App.open(Settings.load(bai.env))
    install(app)
    server = start_server(bai.home, bai.env)
    try:
        jobs.create_job(app, "rg", "ws", "exp", "j", job_body("echo hi; sleep 600"))
        wait_for(app, "j", ("running",))
        received: list[str] = []

        login = httpx.post(
            f"{server.url}/ui/login",
            data={"token": server.token},
            headers={"Origin": server.url},
            follow_redirects=False,
        )
        assert login.status_code == 303, login.text
        session = login.cookies["openbai_session"]  # the session's id: the token stays here

        def follow() -> None:
            url = f"{server.url}{J}/files/stdouterr/stream?path=stdout.txt"
            cookies = {"openbai_session": session}
            try:
                with httpx.stream("GET", url, cookies=cookies, timeout=60) as response:
                    for text in response.iter_text():
                        received.append(text)
            except httpx.HTTPError:
                pass

        reader = threading.Thread(target=follow, daemon=True)
        reader.start()
        deadline = time.monotonic() + 10
        while not any("hi" in t for t in received):
            assert time.monotonic() < deadline, received
            time.sleep(0.05)
        assert server.stop() == 0  # an open stream does not hold the shutdown (not killed)
        reader.join(5)
        assert not reader.is_alive()
    finally:
        server.stop()
        stop_jobs(app, ["j"])
        app.close()


def _points(events: list[tuple[str, str | None, Any]]) -> list[Any]:
    return [p for name, _, batch in events if name == "metrics" for p in batch]


def test_a_job_page_has_one_stream_for_its_log_and_metrics(
    web: TestClient, run_job: Callable[..., str]
) -> None:
    run_job("j", "echo 'metric: loss=0.9 step=1'; echo hello; echo oops >&2")
    page = web.get(J)
    # the page's views go through the stream its browser's tabs share (test_shared_stream);
    # each tab of the log is one view of a file, with the job's metrics
    assert (
        'data-live="/ui/live"' in page.text
        and """data-job='["rg", "ws", "exp", "j"]'""" in page.text
    )
    tabs = re.findall(
        r'data-directory="stdouterr" data-path="([^"]*)" data-with-metrics', page.text
    )
    assert tabs == ["stdout.txt", "stderr.txt", "execution.log"]
    assert "/metrics" not in page.text

    events = parse_events(web.get(J + "/live?file=stdout.txt").text)
    assert text_of(events) == "metric: loss=0.9 step=1\nhello\n"
    assert _points(events) == [{"x": 1, "line": 1, "values": {"loss": 0.9}}]
    assert events[-1] == ("end", None, {"bytes": len("metric: loss=0.9 step=1\nhello\n")})

    # another log on the same stream: its text, and the metrics of stdout all the same
    events = parse_events(web.get(J + "/live?file=stderr.txt").text)
    assert text_of(events) == "oops\n"
    assert _points(events) == [{"x": 1, "line": 1, "values": {"loss": 0.9}}]
    assert [name for name, _, _ in events].count("end") == 1 and events[-1][0] == "end"


def test_a_job_stream_resumes_its_log_and_sends_all_metrics_again(
    web: TestClient, run_job: Callable[..., str]
) -> None:
    run_job("j", "echo first; echo 'metric: acc=0.5 step=3'")
    events = parse_events(web.get(J + "/live?file=stdout.txt", headers={"Last-Event-ID": "6"}).text)
    assert text_of(events) == "metric: acc=0.5 step=3\n"
    assert _points(events) == [{"x": 3, "line": 2, "values": {"acc": 0.5}}]


def test_a_job_stream_refuses_a_path_out_of_its_folder(
    web: TestClient, run_job: Callable[..., str]
) -> None:
    run_job("j", "echo hi")
    response = web.get(J + "/live", params={"file": "../x.txt"})
    assert response.status_code == 400 and "path" in response.text


def test_a_large_file_opens_at_its_last_lines_and_earlier_ones_load_on_demand(
    web: TestClient, run_job: Callable[..., str]
) -> None:
    from openbai.web.live import TAIL_BYTES

    run_job("j", "seq 1 150000")  # 1 MB: four blocks of earlier lines
    whole = "".join(f"{i}\n" for i in range(1, 150001))
    for url in (J + "/files/stdouterr/stream?path=stdout.txt&tail=1", J + "/live"):
        events = parse_events(web.get(url).text)
        assert events[0][0] == "skipped"
        start = events[0][2]["bytes"]
        assert 0 < len(whole) - start <= TAIL_BYTES and whole[start - 1] == "\n"
        assert text_of(events) == whole[start:]  # from a whole line to the end
        assert events[-1] == ("end", None, {"bytes": len(whole)})

    shown = whole[start:]
    blocks = 0
    while start > 0:
        earlier = web.get(
            J + "/files/stdouterr/earlier", params={"path": "stdout.txt", "end": start}
        )
        assert earlier.status_code == 200
        begin = int(earlier.headers["x-start"])
        assert begin < start and (begin == 0 or whole[begin - 1] == "\n")
        assert earlier.text == whole[begin:start]
        shown = earlier.text + shown
        start, blocks = begin, blocks + 1
    assert shown == whole and blocks >= 3

    # without tail, a file view starts at the beginning, as before
    assert "skipped" not in web.get(J + "/files/stdouterr/stream?path=stdout.txt").text

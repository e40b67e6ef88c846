"""The one stream a browser's tabs share (``/ui/live?view=...``): several jobs' views, each
event naming its view, resumed at the offsets the views reached, each view checked against
the token as its own page's stream is."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from openbai.installation import App
from openbai.services import sessions, tokens, workspaces
from openbai.services.tokens import Role
from openbai.web import shared_stream

from .conftest import TestClient, wait_for
from .test_live import parse_events
from .test_sessions_server_side import log_in, session_cookie


def view(
    number: int,
    job: str,
    path: str = "stdout.txt",
    *,
    offset: int | None = None,
    metrics: bool = False,
    directory: str = "stdouterr",
    where: tuple[str, str, str] = ("rg", "ws", "exp"),
) -> str:
    fields = [str(number), "" if offset is None else str(offset), "1" if metrics else "0"]
    fields += [*where, job, directory, path]
    return ",".join(quote(f, safe="") for f in fields)


def events_of(client: TestClient, *views: str) -> list[tuple[Any, str, Any, Any]]:
    """(view, kind, data, offset) of every event of the stream, until it ended."""
    response = client.get("/ui/live", params={"view": list(views)})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    found = []
    for name, _, data in parse_events(response.text):
        assert name == "message"
        found.append((data["view"], data["kind"], data["data"], data["at"]))
    return found


def text_of(events: list[tuple[Any, str, Any, Any]], number: int) -> str:
    return "".join(d for v, kind, d, _ in events if v == number and kind == "text")


def test_two_jobs_views_share_one_stream_each_event_naming_its_view(
    web: TestClient, run_job: Callable[..., str]
) -> None:
    run_job("a", "echo 'metric: loss=0.5 step=1'; echo from a; echo oops >&2")
    run_job("b", "echo from b")
    events = events_of(
        web, view(1, "a", metrics=True), view(2, "b"), view(3, "a", "stderr.txt", metrics=True)
    )
    assert text_of(events, 1) == "metric: loss=0.5 step=1\nfrom a\n"
    assert text_of(events, 2) == "from b\n"
    assert text_of(events, 3) == "oops\n"
    # metrics only where asked: the stdout's points, also beside stderr
    for number, wanted in ((1, True), (2, False), (3, True)):
        points = [p for v, kind, d, _ in events if v == number and kind == "metrics" for p in d]
        assert points == ([{"x": 1, "line": 1, "values": {"loss": 0.5}}] if wanted else [])
    for number, size in ((1, 31), (2, 7), (3, 5)):
        mine = [(kind, d) for v, kind, d, _ in events if v == number]
        assert mine[-1] == ("end", {"bytes": size})  # last, once
        assert [kind for kind, _ in mine].count("end") == 1
        states = [d for kind, d in mine if kind == "state"]
        assert states == [{"state": "succeeded", "note": None, "ended": True}]
    offsets = [at for v, kind, _, at in events if v == 1 and kind == "text"]
    assert offsets == sorted(offsets) and offsets[-1] == 31


def test_views_resume_at_the_offsets_they_reached(
    web: TestClient, run_job: Callable[..., str]
) -> None:
    run_job("a", "printf 'first\\nsecond\\n'")
    run_job("b", "printf 'one\\ntwo\\n'")
    events = events_of(web, view(4, "a", offset=6), view(9, "b", offset=0))
    assert text_of(events, 4) == "second\n"
    assert text_of(events, 9) == "one\ntwo\n"
    assert not [e for e in events if e[1] == "skipped"]  # resumed, not opened at the end


def test_a_queued_jobs_state_says_it_waits_and_each_change_comes(
    web: TestClient, run_job: Callable[..., str], installation: App
) -> None:
    run_job("big", "echo never", wait=False, nodeCount=3)  # 3 nodes on a 2-node cluster: waits
    run_job("quick", "sleep 1; echo done", wait=False)
    wait_for(installation, "quick", ("running", "succeeded"))
    response = web.get("/ui/live", params={"view": [view(1, "quick")]})
    states = [d["data"]["state"] for _, _, d in parse_events(response.text) if d["kind"] == "state"]
    assert states[-1] == "succeeded" and states[0] in ("running", "succeeded")

    with web.stream("GET", "/ui/live", params={"view": [view(2, "big")]}) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: ") and '"state"' in line:
                assert '"state": "queued", "note": "waiting for nodes"' in line
                break


def test_a_view_out_of_the_tokens_reach_fails_alone(
    service: App, installation: App, run_job: Callable[..., str]
) -> None:
    run_job("a", "echo mine")
    workspaces.create_workspace(service, "rg", "other")
    _, token = tokens.create_token(service, "mine", role=Role.READER, workspaces=["rg/ws"])
    web = log_in(service, token)
    events = events_of(
        web,
        view(1, "a"),
        view(2, "a", where=("rg", "other", "exp")),
        view(3, "gone"),
    )
    assert text_of(events, 1) == "mine\n"
    (refused,) = [d for v, _, d, _ in events if v == 2]
    assert "limited to the workspaces rg/ws" in refused["message"]
    (missing,) = [(k, d) for v, k, d, _ in events if v == 3]
    assert missing[0] == "failure" and "gone" in missing[1]["message"]


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ("1,,0,rg,ws,exp,a,stdouterr", "view[0]"),
        ("x,,0,rg,ws,exp,a,stdouterr,stdout.txt", "view[0].id"),
        ("1,-5,0,rg,ws,exp,a,stdouterr,stdout.txt", "view[0].offset"),
        ("1,,yes,rg,ws,exp,a,stdouterr,stdout.txt", "view[0].metrics"),
        ("1,,0,rg,w%2Fs,exp,a,stdouterr,stdout.txt", "view[0].ws"),
        ("1,,0,rg,ws,exp,a,stdouterr,..%2F..%2Fetc%2Fpasswd", "view[0].path"),
        ("1,,0,rg,ws,exp,a,stdouterr,%FF", "view[0]"),
    ],
)
def test_a_malformed_view_is_refused_naming_its_field(
    web: TestClient, installation: App, given: str, field: str
) -> None:
    response = web.get("/ui/live?view=" + quote(given, safe=","))
    assert response.status_code == 400
    assert field in response.text


def test_views_are_counted_and_named_once(web: TestClient, installation: App) -> None:
    assert (
        "view[1].id 1 is given twice"
        in web.get("/ui/live", params={"view": [view(1, "a"), view(1, "b")]}).text
    )
    many = [view(n, "a") for n in range(shared_stream.MAX_VIEWS + 1)]
    assert web.get("/ui/live", params={"view": many}).status_code == 400
    assert web.get("/ui/live").status_code in (400, 422)


def test_logging_out_ends_the_stream(
    service: App, token: str, run_job: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared_stream, "SESSION_CHECK", 0.0)
    run_job("ticker", "while true; do echo tick; sleep 0.1; done", wait=False)
    wait_for(service, "ticker", ("running",))
    web = log_in(service, token)
    ended = False
    with web.stream("GET", "/ui/live", params={"view": [view(1, "ticker")]}) as stream:
        for line in stream.iter_lines():
            if '"tick' in line and not ended:
                sessions.end_session(service, session_cookie(web))
                ended = True
            if '"view": null' in line:
                assert "the session has ended" in line
                break
        else:
            pytest.fail("the stream ended without saying why")

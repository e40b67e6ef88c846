"""Logging in with a token, the session cookie, and the CSRF checks of state-changing forms."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from routes import declared_routes, mounted_app

from openbai.installation import App
from openbai.server import create_app
from openbai.services import tokens

from .conftest import JOB_URL, TestClient

SAMPLE = {"rg": "rg", "ws": "ws", "exp": "exp", "job": "j", "directory": "stdouterr"}


def web_routes(client: TestClient) -> list[tuple[str, str]]:
    """(method, path) of every route of the explorer, with sample names filled in."""
    ui = mounted_app(client.app, "/ui")
    return [(method, "/ui" + path.format(**SAMPLE)) for method, path in declared_routes(ui)]


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match[1]


def test_every_page_but_the_login_sends_a_visitor_to_log_in(anonymous: TestClient) -> None:
    routes = web_routes(anonymous)
    assert len(routes) >= 15
    for method, path in routes:
        if path == "/ui/login":
            continue
        response = anonymous.request(method, path, follow_redirects=False)
        assert response.status_code == 303, (method, path)
        expected = f"/ui/login?next={path.replace('/', '%2F')}" if method == "GET" else "/ui/login"
        assert response.headers["location"] == expected, (method, path)


def test_the_login_page_sends_you_back_where_you_were(anonymous: TestClient, token: str) -> None:
    page = anonymous.get("/ui/storage")
    assert page.status_code == 200 and 'name="next" value="/ui/storage"' in page.text
    response = anonymous.post(
        "/ui/login", data={"token": token, "next": "/ui/storage"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/storage"
    assert anonymous.get("/ui/storage").status_code == 200


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/ui/", "/api/x", "/ui\\..\\x", "javascript:alert(1)"],
)
def test_after_login_you_never_land_on_another_site(
    anonymous: TestClient, token: str, target: str
) -> None:
    response = anonymous.post(
        "/ui/login", data={"token": token, "next": target}, follow_redirects=False
    )
    assert response.headers["location"] == "/ui/"


def test_the_cookie_holds_a_session_id_httponly_and_samesite(
    anonymous: TestClient, token: str
) -> None:
    response = anonymous.post("/ui/login", data={"token": token}, follow_redirects=False)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("openbai_session=") and token not in cookie
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/ui" in cookie
    assert "Secure" not in cookie  # plain http: a Secure cookie would never come back


def test_over_https_the_cookie_is_secure(service: App, token: str) -> None:
    with TestClient(create_app(service.settings, service=service), base_url="https://x") as c:
        cookie = c.post("/ui/login", data={"token": token}, follow_redirects=False).headers[
            "set-cookie"
        ]
    assert "Secure" in cookie


@pytest.mark.parametrize("given", ["", "bai_wrong", "x" * 300])
def test_a_wrong_token_shows_the_form_again(anonymous: TestClient, given: str) -> None:
    response = anonymous.post("/ui/login", data={"token": given}, follow_redirects=False)
    assert response.status_code == 401
    assert 'role="alert"' in response.text and "set-cookie" not in response.headers


def test_a_login_posted_from_another_site_is_refused(anonymous: TestClient, token: str) -> None:
    response = anonymous.post(
        "/ui/login",
        data={"token": token},
        headers={"Origin": "http://evil.example"},
        follow_redirects=False,
    )
    assert response.status_code == 403 and "set-cookie" not in response.headers


def test_deleting_the_token_ends_its_sessions(web: TestClient, service: App) -> None:
    assert web.get("/ui/workspaces").status_code == 200
    tokens.delete_token(service, "browser")
    response = web.get("/ui/workspaces", follow_redirects=False)
    assert response.status_code == 303


def test_logging_out_clears_the_cookie(web: TestClient) -> None:
    csrf = csrf_of(web.get("/ui/workspaces").text)
    response = web.post("/ui/logout", data={"csrf": csrf}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/ui/login"
    assert 'openbai_session=""' in response.headers["set-cookie"]
    assert web.get("/ui/workspaces", follow_redirects=False).status_code == 303


def test_htmx_and_event_streams_are_told_to_log_in_their_way(anonymous: TestClient) -> None:
    fragment = anonymous.get(JOB_URL + "/j/summary", headers={"HX-Request": "true"})
    assert fragment.status_code == 204
    assert fragment.headers["hx-redirect"].startswith("/ui/login?next=")
    stream = anonymous.get(
        JOB_URL + "/j/metrics", headers={"Accept": "text/event-stream"}, follow_redirects=False
    )
    assert stream.status_code == 401


@pytest.fixture
def sleeper(web: TestClient, run_job: Callable[..., str]) -> str:
    run_job("sleeper", "sleep 600", wait=False)
    return JOB_URL + "/sleeper"


def test_terminate_needs_the_forms_csrf_token(
    web: TestClient, sleeper: str, installation: App
) -> None:
    from openbai.services import jobs

    csrf = csrf_of(web.get(sleeper).text)
    refused = [
        web.post(sleeper + "/terminate", follow_redirects=False),
        web.post(sleeper + "/terminate", data={"csrf": "forged"}, follow_redirects=False),
        web.post(
            sleeper + "/terminate",
            data={"csrf": csrf},
            headers={"Origin": "http://evil.example"},
            follow_redirects=False,
        ),
        web.post(
            sleeper + "/terminate",
            data={"csrf": csrf},
            headers={"Sec-Fetch-Site": "cross-site"},
            follow_redirects=False,
        ),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403, 403]
    assert web.get(sleeper + "/terminate").status_code == 405
    state = jobs.get_job(installation, "rg", "ws", "exp", "sleeper").execution_state
    assert state in ("queued", "running")

    response = web.post(
        sleeper + "/terminate",
        data={"csrf": csrf},
        headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == sleeper
    state = jobs.get_job(installation, "rg", "ws", "exp", "sleeper").execution_state
    assert state in ("terminating", "failed")


def test_delete_needs_the_forms_csrf_token(
    web: TestClient, sleeper: str, installation: App
) -> None:
    from openbai.services import jobs

    assert web.post(sleeper + "/delete", follow_redirects=False).status_code == 403
    csrf = csrf_of(web.get(sleeper).text)
    response = web.post(sleeper + "/delete", data={"csrf": csrf}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/workspaces/rg/ws/experiments/exp"
    # marked deleting at once, gone once its processes have stopped
    deadline = time.monotonic() + 30
    while jobs.count_jobs(installation, "rg", "ws", "exp"):
        assert time.monotonic() < deadline, "the job was not deleted"
        time.sleep(0.1)

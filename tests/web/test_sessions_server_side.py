"""Sessions kept on the server: the cookie holds a random id (never the token), logging out,
deleting the token or its expiry end the session for every copy of the cookie; pages are
never cached; the token's role and workspaces apply to pages and actions as to the API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from routes import declared_routes, mounted_app
from sqlalchemy import select

from openbai.http.permissions import WEB_RULES
from openbai.installation import App
from openbai.server import create_app
from openbai.services import audit, jobs, tokens, workspaces
from openbai.services.tokens import Role
from openbai.store.models import ApiToken, WebSession, utcnow

from .conftest import JOB_URL, TestClient
from .test_session import csrf_of


def log_in(service: App, token: str) -> TestClient:
    client = TestClient(create_app(service.settings, service=service))
    response = client.post("/ui/login", data={"token": token}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return client


def session_cookie(client: TestClient) -> str:
    value = client.cookies.get("openbai_session")
    assert value
    return str(value)


def replay(service: App, cookie: str, path: str = "/ui/workspaces") -> int:
    """A request with a copy of a cookie, from a browser that never logged out."""
    other = TestClient(create_app(service.settings, service=service))
    other.cookies.set("openbai_session", cookie, path="/ui")
    return int(other.get(path, follow_redirects=False).status_code)


def test_every_page_has_a_rule(anonymous: TestClient) -> None:
    assert declared_routes(mounted_app(anonymous.app, "/ui")) == sorted(WEB_RULES)


def test_the_cookie_holds_a_random_id_and_the_store_only_its_hash(service: App, token: str) -> None:
    cookie = session_cookie(log_in(service, token))
    assert token not in cookie and len(cookie) >= 40
    with service.db.reading() as s:
        stored = [row.id_hash for row in s.query(WebSession)]
    assert len(stored) == 1 and cookie not in stored[0]


def test_logging_out_ends_the_session_for_every_copy_of_the_cookie(
    service: App, token: str
) -> None:
    web = log_in(service, token)
    cookie = session_cookie(web)
    assert replay(service, cookie) == 200
    csrf = csrf_of(web.get("/ui/workspaces").text)
    assert web.post("/ui/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert replay(service, cookie) == 303  # to the login page
    # the token itself still works: logging out ends a session, not the token
    assert tokens.verify_token(service, token).name == "browser"


def test_deleting_the_token_ends_every_session_of_it(service: App, token: str) -> None:
    cookies = [session_cookie(log_in(service, token)) for _ in range(2)]
    assert [replay(service, c) for c in cookies] == [200, 200]
    tokens.delete_token(service, "browser")
    assert [replay(service, c) for c in cookies] == [303, 303]
    with service.db.reading() as s:
        assert s.query(WebSession).count() == 0


def test_a_session_ends_when_its_token_expires(service: App) -> None:
    _, token = tokens.create_token(service, "brief", lifetime=timedelta(hours=1))
    web = log_in(service, token)
    assert web.get("/ui/workspaces", follow_redirects=False).status_code == 200
    with service.db.session() as s:  # the hour is over: no timing to race on a busy machine
        row = s.scalars(select(ApiToken).where(ApiToken.name == "brief")).one()
        row.expires_at = utcnow() - timedelta(seconds=1)
    assert web.get("/ui/workspaces", follow_redirects=False).status_code == 303


def test_a_made_up_session_id_is_sent_to_log_in(service: App) -> None:
    assert replay(service, "bai_not-a-session") == 303


def test_pages_are_never_stored_static_assets_may_be(web: TestClient, installation: App) -> None:
    for path in ["/ui/workspaces", "/ui/workspaces/rg/ws", "/ui/storage", JOB_URL + "/nope"]:
        response = web.get(path)
        assert response.headers["cache-control"] == "no-store", path
    assert web.get("/ui/login").headers["cache-control"] == "no-store"
    css = web.get("/ui/static/openbai.css")
    assert css.status_code == 200 and css.headers.get("cache-control") != "no-store"


def test_a_reader_sees_the_job_but_cannot_terminate_it(
    service: App, installation: App, run_job: Callable[..., str]
) -> None:
    run_job("sleeper", "sleep 600", wait=False)
    _, token = tokens.create_token(service, "viewer", role=Role.READER)
    web = log_in(service, token)
    page = web.get(JOB_URL + "/sleeper")
    assert page.status_code == 200
    csrf = csrf_of(page.text)
    for action in ("terminate", "delete"):
        response = web.post(
            f"{JOB_URL}/sleeper/{action}", data={"csrf": csrf}, follow_redirects=False
        )
        assert response.status_code == 403, action
        assert "reader" in response.text
    state = jobs.get_job(installation, "rg", "ws", "exp", "sleeper").execution_state
    assert state in ("queued", "running")
    denied = audit.list_entries(service, audit.AuditFilter(token="viewer"))
    assert [(e.action, e.result, e.status) for e in denied] == [
        ("session.login", "succeeded", 303),
        ("job.terminate", "denied", 403),
        ("job.delete", "denied", 403),
    ]


def test_a_token_limited_to_a_workspace_sees_only_it(service: App, installation: App) -> None:
    workspaces.create_workspace(service, "rg", "other")
    _, token = tokens.create_token(service, "mine", role=Role.READER, workspaces=["rg/ws"])
    web = log_in(service, token)
    listing = web.get("/ui/workspaces").text
    assert "/ui/workspaces/rg/ws" in listing and "/ui/workspaces/rg/other" not in listing
    assert web.get("/ui/workspaces/rg/ws").status_code == 200
    refused = web.get("/ui/workspaces/rg/other")
    assert refused.status_code == 403 and "limited to the workspaces rg/ws" in refused.text


def test_terminating_from_the_page_is_audited_like_the_api(
    web: TestClient, service: App, run_job: Callable[..., str]
) -> None:
    run_job("sleeper", "sleep 600", wait=False)
    csrf = csrf_of(web.get(JOB_URL + "/sleeper").text)
    response = web.post(JOB_URL + "/sleeper/terminate", data={"csrf": csrf}, follow_redirects=False)
    assert response.status_code == 303
    (entry,) = audit.list_entries(service, audit.AuditFilter(action="job.terminate"))
    sub = service.settings.subscription_id
    assert entry.token == "browser" and entry.result == "succeeded" and entry.status == 303
    assert entry.resource == (
        f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.BatchAI"
        "/workspaces/ws/experiments/exp/jobs/sleeper"
    )

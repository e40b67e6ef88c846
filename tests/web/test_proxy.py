"""The explorer behind a real nginx that ends TLS: logging in, the CSRF checks, the links
and a live log work as they do without it (``bai serve --public-url``, or
``--forwarded-allow-ips`` for a proxy that passes ``X-Forwarded-*`` on)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openbai.installation import App
from openbai.settings import Settings

from .conftest import install
from .nginx_fixture import PREFIX, Proxied, behind_nginx


@pytest.fixture(params=["plain", "forwarded"])
def proxied(request: pytest.FixtureRequest, bai: Any, tmp_path: Path) -> Iterator[Proxied]:
    app = App.open(Settings.load(bai.env))
    try:
        install(app)
    finally:
        app.close()
    yield from behind_nginx(bai.home, bai.env, tmp_path / "nginx", request.param)


def _root(proxied: Proxied) -> str:
    """The explorer's path as the browser sees it."""
    return (PREFIX if proxied.url.endswith(PREFIX) else "") + "/ui"


def _log_in(proxied: Proxied, client: Any) -> Any:
    return client.post(
        f"{proxied.url}/ui/login",
        data={"token": proxied.server.token, "next": _root(proxied) + "/storage"},
        headers={"Origin": proxied.origin, "Sec-Fetch-Site": "same-origin"},
    )


def test_login_through_the_proxy_sets_a_secure_cookie_for_the_public_path(
    proxied: Proxied,
) -> None:
    with proxied.client() as client:
        page = client.get(f"{proxied.url}/ui/workspaces")
        assert page.status_code == 303
        assert page.headers["location"] == _root(proxied) + "/login?next=" + (
            _root(proxied).replace("/", "%2F") + "%2Fworkspaces"
        )
        form = client.get(f"{proxied.url}/ui/login")
        assert f'action="{_root(proxied)}/login"' in form.text
        assert f'href="{_root(proxied)}/static/openbai.css' in form.text

        response = _log_in(proxied, client)
        assert response.status_code == 303, response.text
        assert response.headers["location"] == _root(proxied) + "/storage"
        cookie = response.headers["set-cookie"]
        assert "Secure" in cookie and f"Path={_root(proxied)};" in cookie, cookie

        # the cookie is Secure: httpx keeps it for https only, as a browser does
        storage = client.get(f"{proxied.url}/ui/storage")
        assert storage.status_code == 200
        assert re.search(rf'href="{_root(proxied)}/workspaces"', storage.text)


def test_a_form_from_another_site_is_refused_through_the_proxy(proxied: Proxied) -> None:
    with proxied.client() as client:
        assert _log_in(proxied, client).status_code == 303
        page = client.get(f"{proxied.url}/ui/storage")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        forged = client.post(
            f"{proxied.url}/ui/logout",
            data={"csrf": csrf.group(1)},
            headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        )
        assert forged.status_code == 403
        assert client.get(f"{proxied.url}/ui/storage").status_code == 200  # still logged in

        out = client.post(
            f"{proxied.url}/ui/logout",
            data={"csrf": csrf.group(1)},
            headers={"Origin": proxied.origin, "Sec-Fetch-Site": "same-origin"},
        )
        assert out.status_code == 303 and out.headers["location"] == _root(proxied) + "/login"
        assert client.get(f"{proxied.url}/ui/storage").status_code == 303


def test_the_origin_is_the_public_one_not_the_upstream(proxied: Proxied) -> None:
    """What the server listens on is not where browsers are: an Origin naming the
    upstream address (http) is another site's."""
    with proxied.client() as client:
        response = client.post(
            f"{proxied.url}/ui/login",
            data={"token": proxied.server.token},
            headers={"Origin": proxied.server.url},
        )
        assert response.status_code == 403


def test_a_live_log_comes_through_the_proxy_as_the_job_writes_it(
    proxied: Proxied, gates: Path
) -> None:
    """nginx buffers answers by default: the stream says not to (``X-Accel-Buffering``), so
    a line shows while the job still runs."""
    from api.support import Arm

    from .conftest import job_body

    script = gates / "live.sh"  # where a sandboxed job can read it
    script.write_text(
        "echo one\n"
        f'for i in $(seq 3000); do [ -e "{gates / "go"}" ] && break; sleep 0.02; done\n'
        "echo two\n"
    )
    url = Arm(proxied.server.subscription).rg("workspaces", "ws", "experiments", "exp", "jobs", "j")
    with proxied.server.client() as api:
        assert api.put(url, json=job_body(f"bash {script}")).status_code == 200
    with proxied.client() as client:
        assert _log_in(proxied, client).status_code == 303
        live = f"{proxied.url}/ui/workspaces/rg/ws/experiments/exp/jobs/j/live"
        seen = ""
        named = False  # the text is in unnamed events (state and metrics have names)
        with client.stream("GET", live, params={"file": "stdout.txt"}) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line.startswith("event: "):
                    named = True
                elif line == "":
                    named = False
                elif line.startswith("data: ") and not named:
                    seen += str(json.loads(line[len("data: ") :]))
                if seen == "one\n":
                    (gates / "go").touch()  # only now may the job go on
                if line == "event: end":
                    break
        assert seen.startswith("one\ntwo\n")
        assert (gates / "go").exists()  # 'one' came alone, while the job ran: not buffered


def test_the_stream_the_pages_share_comes_through_the_proxy_too(
    proxied: Proxied, gates: Path
) -> None:
    """The pages' views come through ``/ui/live?view=...`` (one stream per browser)."""
    from api.support import Arm

    from .conftest import job_body

    script = gates / "shared.sh"
    script.write_text(
        "echo one\n"
        f'for i in $(seq 3000); do [ -e "{gates / "go"}" ] && break; sleep 0.02; done\n'
        "echo two\n"
    )
    url = Arm(proxied.server.subscription).rg("workspaces", "ws", "experiments", "exp", "jobs", "j")
    with proxied.server.client() as api:
        assert api.put(url, json=job_body(f"bash {script}")).status_code == 200
    with proxied.client() as client:
        assert _log_in(proxied, client).status_code == 303
        view = "7,,0,rg,ws,exp,j,stdouterr,stdout.txt"
        seen = ""
        kinds = []
        with client.stream("GET", f"{proxied.url}/ui/live", params={"view": view}) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if not line.startswith("data: "):
                    continue
                message = json.loads(line[len("data: ") :])
                assert message["view"] == 7
                kinds.append(message["kind"])
                if message["kind"] == "text":
                    seen += message["data"]
                if seen == "one\n":
                    (gates / "go").touch()  # only now may the job go on
        assert seen == "one\ntwo\n" and kinds[-1] == "end"
        assert (gates / "go").exists()  # 'one' came alone, while the job ran: not buffered

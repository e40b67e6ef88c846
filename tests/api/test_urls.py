"""Links the server hands out (nextLink, download links, operation URLs) point at the
server itself, whatever a client writes in its ``Host`` header."""

from __future__ import annotations

import warnings

import pytest

from openbai.errors import SpecError
from openbai.installation import App
from openbai.server import create_app

from .support import Server

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def _workspaces(server: Server, n: int = 2) -> str:
    with server.client() as http:
        for i in range(n):
            url = f"/subscriptions/{server.subscription}/resourceGroups/rg/providers/Microsoft.BatchAI/workspaces/w{i}"
            assert (
                http.put(
                    url, params={"api-version": "2018-05-01"}, json={"location": "local"}
                ).status_code
                == 200
            )
    return f"/subscriptions/{server.subscription}/providers/Microsoft.BatchAI/workspaces?api-version=2018-05-01&maxresults=1"


def test_a_forged_host_header_does_not_move_links(server: Server) -> None:
    first_page = _workspaces(server)
    port = server.url.rsplit(":", 1)[1]
    with server.client() as http:
        for forged in (
            "evil.example",
            f"evil.example:{port}",
            "127.0.0.2:" + port,
            "[::1]:" + port,
        ):
            page = http.get(first_page, headers={"Host": forged}).json()
            assert page["nextLink"].startswith(server.url + "/subscriptions/"), forged
            assert http.get(page["nextLink"]).json()["value"][0]["name"] == "w1"
        # the machine's own names are kept, as the client wrote them
        local = http.get(first_page, headers={"Host": f"localhost:{port}"}).json()
        assert local["nextLink"].startswith(f"http://localhost:{port}/subscriptions/")
        # the same goes for operation URLs
        accepted = http.delete(
            first_page.replace("/providers/", "/resourceGroups/rg/providers/").split("?")[0]
            + "/w0",
            params={"api-version": "2018-05-01"},
            headers={"Host": "evil.example"},
        )
        assert accepted.status_code == 202
        assert accepted.headers["Azure-AsyncOperation"].startswith(server.url + "/subscriptions/")


def test_a_configured_public_url(service: App, token: str) -> None:
    api = create_app(service.settings, service=service, public_url="https://bai.example.org/api/")
    with TestClient(api, headers={"Authorization": f"Bearer {token}"}) as http:
        sub = service.settings.subscription_id
        for name in ("a", "b"):
            url = f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.BatchAI/workspaces/{name}"
            http.put(url, params={"api-version": "2018-05-01"}, json={"location": "local"})
        page = http.get(
            f"/subscriptions/{sub}/providers/Microsoft.BatchAI/workspaces",
            params={"api-version": "2018-05-01", "maxresults": "1"},
            headers={"Host": "evil.example"},
        ).json()
        assert page["nextLink"].startswith(f"https://bai.example.org/api/subscriptions/{sub}/")
        assert "%24skiptoken=1" in page["nextLink"] or "$skiptoken=1" in page["nextLink"]


@pytest.mark.parametrize(
    "bad", ["ftp://x", "http://", "http://h/?q=1", "http://u:p@h", "http://h:99999"]
)
def test_bad_public_urls_are_refused(service: App, bad: str) -> None:
    with pytest.raises(SpecError) as refused:
        create_app(service.settings, service=service, public_url=bad)
    assert refused.value.target == "--public-url"

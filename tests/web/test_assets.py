"""The explorer's own and vendored static files, and what every page tells the browser."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import openbai.web

from .conftest import TestClient

WEB = Path(openbai.web.__file__).parent
VENDOR = WEB / "static" / "vendor"


def test_vendored_files_are_the_packages_files() -> None:
    manifest = json.loads((VENDOR / "VENDOR.json").read_text())
    listed = {"VENDOR.json"}
    for package in manifest["packages"]:
        assert package["license"] and package["version"] and package["integrity"]
        for name, entry in package["files"].items():
            listed.add(name)
            assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == entry["sha256"], name
    assert {p.name for p in VENDOR.iterdir()} == listed


def referenced_static_files() -> set[str]:
    names = set()
    for template in (WEB / "templates").glob("*.html"):
        text = template.read_text()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), template.name
        names |= set(re.findall(r"links\.static\('([^']+)'\)", text))
    return names


def test_every_asset_a_page_uses_is_served_without_a_session(anonymous: TestClient) -> None:
    names = referenced_static_files()
    assert {"openbai.js", "openbai.css", "vendor/htmx.min.js", "vendor/uPlot.iife.min.js"} <= names
    for name in names:
        response = anonymous.get(f"/ui/static/{name}")
        assert response.status_code == 200, name


def test_pages_carry_a_strict_content_security_policy(web: TestClient) -> None:
    response = web.get("/ui/workspaces")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    login = web.get("/ui/login")
    assert "content-security-policy" in login.headers

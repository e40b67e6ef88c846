"""Rendering pages: the Jinja2 environment (autoescape always on) and its filters.

Every value a template prints is escaped, so names, file names and messages from jobs are
text, never markup. A request made by htmx (``HX-Request``) gets only the fragment a page
is built around, so one route serves both the page and its updates.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined

from openbai import __version__
from openbai.http.file_names import is_text, shown_name
from openbai.vocabulary import FINAL_STATES
from openbai.web.links import Links

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def size(value: int | None) -> str:
    """``1536`` → ``1.5 KiB``; bytes are exact below 1 KiB."""
    if value is None:
        return ""
    amount = float(value)
    for unit in _UNITS:
        if amount < 1024 or unit == _UNITS[-1]:
            return f"{value} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def when(value: str | datetime | None) -> str:
    """An ISO time as ``2018-05-01 12:00:00Z`` (UTC, seconds); empty when unknown."""
    if value is None or value == "":
        return ""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def duration(start: str | None, end: str | None) -> str:
    """How long a job ran (until now while it runs): ``45s``, ``12m 03s``, ``3h 05m``,
    ``2d 04h``; empty before it started."""
    if not start:
        return ""
    begun = datetime.fromisoformat(start)
    finished = datetime.fromisoformat(end) if end else datetime.now(begun.tzinfo or UTC)
    seconds = max(0, int((finished - begun).total_seconds()))
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    days, hour = divmod(hours, 24)
    if days:
        return f"{days}d {hour:02d}h"
    if hours:
        return f"{hours}h {minute:02d}m"
    return f"{minutes}m {second:02d}s" if minutes else f"{second}s"


def last_segment(resource_id: str | None) -> str:
    """``/subscriptions/.../clusters/c1`` → ``c1``."""
    return (resource_id or "").rstrip("/").rsplit("/", 1)[-1]


def resource_group(resource_id: str) -> str:
    """The resource group named in an ARM id."""
    match = re.search(r"/resourceGroups/([^/]+)", resource_id)
    return match[1] if match else ""


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("openbai.web", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        size=size,
        when=when,
        duration=duration,
        last_segment=last_segment,
        resource_group=resource_group,
        pretty_json=pretty_json,
        shown_name=shown_name,
    )
    env.tests.update(text=is_text)
    env.globals.update(version=__version__, FINAL_STATES=FINAL_STATES)
    return env


ENVIRONMENT = _environment()


def is_fragment(request: Request) -> bool:
    """Whether htmx asked for a part of a page (not a boosted whole page)."""
    return "hx-request" in request.headers and "hx-boosted" not in request.headers


def render(
    request: Request,
    template: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    context.setdefault("session", None)
    html = ENVIRONMENT.get_template(template).render(
        request=request, links=Links.of(request), **context
    )
    return HTMLResponse(html, status, headers)

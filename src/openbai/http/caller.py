"""The caller of a request (its token) and its admission to the route: the API's bearer check
and the web page's session check both end here, so both apply one table of rules
(:mod:`openbai.http.permissions`) and note what the audit log records."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import Depends, Request

from openbai.errors import AuthError
from openbai.http.audit_trail import note
from openbai.http.permissions import Rule, authorize, resource_of, rule_for
from openbai.installation import App
from openbai.services.tokens import TokenInfo

_CALLER = "openbai_caller"


def admit(
    request: Request, app: App, token: TokenInfo, rules: Mapping[tuple[str, str], Rule]
) -> TokenInfo:
    """Let ``token`` call the route ``request`` matched, or raise ``AuthorizationError``; a
    mutating call is noted for the audit log first, so that a refusal is recorded too."""
    route = request.scope.get("route")
    path = getattr(route, "path", request.url.path)
    rule = rule_for(rules, request.method, path)
    if rule.mutates:
        resource = resource_of(
            app.settings.subscription_id, request.path_params, request.query_params.get("path")
        )
        note(request, token.name, rule.action, resource or request.url.path)
    authorize(token, rule, request.path_params)
    setattr(request.state, _CALLER, token)
    return token


async def caller(request: Request) -> TokenInfo:
    """The token admitted to this request (a route's own dependency runs after admission)."""
    token: TokenInfo | None = getattr(request.state, _CALLER, None)
    if token is None:
        raise AuthError("the request was not authenticated")
    return token


Caller = Annotated[TokenInfo, Depends(caller)]

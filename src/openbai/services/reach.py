"""What a caller may name in a request beyond the resource of its route.

The route's own workspace is checked at the edge (``openbai.http.permissions``), but a body
names more: a job's cluster and the file servers a job or cluster mounts may lie in other
workspaces (by ARM id, as on Batch AI), and a token limited to some workspaces must not reach
another's through them. A cluster without a sandbox runs its jobs with the server's own
identity (its keys, its database, root where it runs as root): only a token of the
installation's owner (an owner limited to no workspace) may make one.

``caller`` is None for the local CLI, which holds the installation itself.
"""

from __future__ import annotations

from openbai.errors import AuthorizationError
from openbai.services.tokens import Role, TokenInfo


def require_workspace(caller: TokenInfo | None, rg: str, ws: str, *, field: str) -> None:
    """Refuse ``field``'s reference into workspace ``rg/ws`` when the token does not reach it."""
    if caller is None or caller.covers(rg, ws):
        return
    raise AuthorizationError(
        f"{field}: the token {caller.name!r} is limited to the workspaces"
        f" {', '.join(caller.workspaces)}, not {rg}/{ws}",
        target=field,
    )


def require_installation_owner(caller: TokenInfo | None, what: str, *, field: str) -> None:
    """Refuse ``what`` to all but the installation's owner."""
    if caller is None or (caller.role is Role.OWNER and not caller.scoped):
        return
    reach = f"limited to {', '.join(caller.workspaces)}" if caller.scoped else "unlimited"
    raise AuthorizationError(
        f"{field}: {what} needs an owner token limited to no workspace; the token"
        f" {caller.name!r} is a {caller.role.value} token, {reach}",
        target=field,
    )

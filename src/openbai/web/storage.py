"""Storage accounts with their blob containers and file shares.

An account whose service cannot be reached (an Azure account offline) is shown with the
error instead of its volumes; the other accounts are still listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter, Request, Response

from openbai.errors import OpenBaiError
from openbai.http.service import Service
from openbai.installation import App
from openbai.services import accounts
from openbai.storage.base import VolumeKind
from openbai.web.session import Browser
from openbai.web.templating import render

router = APIRouter()


@dataclass(frozen=True)
class AccountVolumes:
    account: accounts.Account
    containers: list[str] = field(default_factory=list)
    shares: list[str] = field(default_factory=list)
    error: str | None = None


def account_volumes(app: App, account: accounts.Account) -> AccountVolumes:
    try:
        found = {
            kind: [v.name for v in accounts.backend(app, account.name, kind).list_volumes()]
            for kind in VolumeKind
        }
    except OpenBaiError as exc:
        return AccountVolumes(account, error=exc.message)
    return AccountVolumes(account, found[VolumeKind.BLOB], found[VolumeKind.FILE])


@router.get("/storage")
def storage_accounts(request: Request, app: Service, session: Browser) -> Response:
    listed = [account_volumes(app, a) for a in accounts.list_accounts(app)]
    return render(request, "storage.html", session=session, accounts=listed)

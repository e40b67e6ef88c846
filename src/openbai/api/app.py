"""The REST server: ``create_app(settings)`` builds the FastAPI application of ``bai serve``.

It serves Microsoft.BatchAI 2018-05-01 (every path and verb of the swagger, so that
``azure-mgmt-batchai`` works unchanged against it), openbai's extensions under
``/openbai`` (storage, installation info, signed downloads), ``/healthz`` and
``/openapi.json``. Every route but ``/healthz`` and signed download links needs a bearer
token.

Decisions, for clients:

- Creates answer 200 with the whole resource (``provisioningState: succeeded``); a missing
  resource is a 404, also on DELETE.
- Deleting a workspace, experiment, cluster or job, and terminating a job, answer 202 with
  ``Azure-AsyncOperation`` and ``Location`` (``Retry-After: 1``); deletes end in the
  background (see ``openbai.api.lro``). File servers are deleted at once (200).
- An installation has one subscription id (``$OPENBAI_HOME/config.json``, shown by
  ``GET /openbai/info``); paths naming another subscription get 404 ``SubscriptionNotFound``.
- Lists are paged with ``maxresults`` (1-1000, default 1000) and a ``nextLink`` that holds
  the whole query plus ``$skiptoken`` (an offset).
- Links (``nextLink``, download links, operation URLs) point at ``--public-url`` if given,
  else at the address the request reached, never at whatever its ``Host`` header says
  (see ``openbai.api.urls``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from openbai import __version__
from openbai.api import (
    audit,
    clusters,
    experiments,
    file_servers,
    files,
    jobs,
    lro,
    node_exec,
    operations,
    responses,
    storage,
    workspaces,
)
from openbai.api.auth import AUTHENTICATED
from openbai.api.params import API_VERSION
from openbai.api.signing import UrlSigner
from openbai.api.urls import check_public_url
from openbai.http.audit_trail import AuditTrail
from openbai.http.errors import install_error_handlers
from openbai.http.json_response import JSONResponse
from openbai.http.service import Service
from openbai.http.threads import limit_request_threads
from openbai.installation import App
from openbai.services.deletions import BackgroundDeletes
from openbai.spec import (
    ClusterCreateParameters,
    ClusterUpdateParameters,
    FileServerCreateParameters,
    JobCreateParameters,
    WorkspaceCreateParameters,
    WorkspaceUpdateParameters,
)

#: request bodies documented in /openapi.json (validated by the services, not by FastAPI)
BODY_MODELS = (
    ClusterCreateParameters,
    ClusterUpdateParameters,
    FileServerCreateParameters,
    JobCreateParameters,
    WorkspaceCreateParameters,
    WorkspaceUpdateParameters,
)


def create_api(
    app: App, background: BackgroundDeletes, *, public_url: str | None = None
) -> FastAPI:
    """The REST API over an opened installation; ``public_url`` is where clients reach it, if
    not at the address they connect to. ``openbai.server`` puts it together with the web page."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        background.finish_pending()  # deletes a previous server left half done
        limit_request_threads()
        try:
            yield
        finally:
            background.close()

    api = FastAPI(
        lifespan=lifespan,
        title="openbai",
        version=__version__,
        summary=f"Microsoft.BatchAI {API_VERSION}, self-hosted",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served below, behind the token like everything else
        default_response_class=JSONResponse,
    )
    api.state.openbai = app
    api.state.signer = UrlSigner(app.settings.home)
    api.state.deletes = background
    api.state.public_url = check_public_url(public_url) if public_url else None
    install_error_handlers(api)
    api.add_middleware(AuditTrail, service=app)
    for module in (operations, lro, workspaces, experiments, clusters, file_servers, jobs):
        api.include_router(module.router, dependencies=AUTHENTICATED)
    api.include_router(files.router)
    api.include_router(files.public)
    api.include_router(node_exec.router)
    api.include_router(storage.router)
    api.include_router(audit.router)

    @api.get("/healthz", tags=["openbai"])
    @api.head("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        """Liveness: no token needed, nothing revealed."""
        return {"status": "ok"}

    @api.get("/openbai/info", dependencies=AUTHENTICATED, tags=["openbai"])
    def info(app: Service) -> dict[str, Any]:
        """This installation: its subscription id and defaults, for clients to address it."""
        return {
            "subscriptionId": app.settings.subscription_id,
            "resourceGroup": app.settings.resource_group,
            "location": app.settings.location,
            "apiVersion": API_VERSION,
            "version": __version__,
        }

    @api.get("/openapi.json", dependencies=AUTHENTICATED, include_in_schema=False)
    def openapi() -> dict[str, Any]:
        return _openapi(api)

    return api


def _openapi(api: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus the JSON schemas of the request bodies."""
    if api.openapi_schema is None:
        document = get_openapi(
            title=api.title,
            version=api.version,
            summary=api.summary,
            description=__doc__,
            routes=api.routes,
        )
        _, schemas = models_json_schema(
            [(m, "validation") for m in BODY_MODELS],
            by_alias=True,
            ref_template="#/components/schemas/{model}",
        )
        components = document.setdefault("components", {}).setdefault("schemas", {})
        components.update(schemas.get("$defs", {}))
        responses.document(document)
        api.openapi_schema = document
    return api.openapi_schema

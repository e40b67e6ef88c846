"""What every Microsoft.BatchAI route takes: the service, api-version, subscription, names
and a JSON body, as FastAPI dependencies (each declared once, so the OpenAPI document and
the checks cannot drift apart)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Query, Request

from openbai.errors import NotFoundError, SpecError
from openbai.http.service import Service
from openbai.spec import documents
from openbai.spec.common import NAME_PATTERN, RESOURCE_GROUP_PATTERN

API_VERSION = "2018-05-01"
PROVIDER = "/providers/Microsoft.BatchAI"
#: subscription-level and resource-group-level prefixes of every ARM path
SUB = "/subscriptions/{subscriptionId}" + PROVIDER
RG = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}" + PROVIDER
WS = RG + "/workspaces/{workspaceName}"
EXP = WS + "/experiments/{experimentName}"
JOB = EXP + "/jobs/{jobName}"


async def api_version(
    version: Annotated[Literal["2018-05-01"], Query(alias="api-version")],
) -> str:
    """``api-version=2018-05-01`` is required on every ARM route (400 when absent or other).

    Cheap dependencies are coroutines: FastAPI hands each plain function to a worker thread,
    a hand-off that costs more than the check."""
    return version


async def subscription(
    app: Service, subscription_id: Annotated[str, Path(alias="subscriptionId")]
) -> str:
    """An installation has one subscription id; any other is not found."""
    if subscription_id.lower() != app.settings.subscription_id.lower():
        raise NotFoundError(
            f"The subscription '{subscription_id}' could not be found: this openbai installation"
            f" serves subscription '{app.settings.subscription_id}'",
            code="SubscriptionNotFound",
            target="subscriptionId",
        )
    return subscription_id


def _name(alias: str) -> Any:
    return Path(alias=alias, min_length=1, max_length=64, pattern=NAME_PATTERN.pattern)


ResourceGroup = Annotated[
    str,
    Path(
        alias="resourceGroupName",
        min_length=1,
        max_length=90,
        pattern=RESOURCE_GROUP_PATTERN.pattern,
    ),
]
Location = Annotated[
    str, Path(alias="location", min_length=1, max_length=90, pattern=RESOURCE_GROUP_PATTERN.pattern)
]
WorkspaceName = Annotated[str, _name("workspaceName")]
ExperimentName = Annotated[str, _name("experimentName")]
ClusterName = Annotated[str, _name("clusterName")]
JobName = Annotated[str, _name("jobName")]
FileServerName = Annotated[str, _name("fileServerName")]

#: the dependencies of every subscription-scoped ARM route
ARM_ROUTE = [Depends(api_version), Depends(subscription)]


async def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object (``{}`` when empty); validated by the services.

    Read up to ARM's 4 MiB whatever the ``Content-Length`` says (a chunked body has none)."""
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > documents.MAX_DOCUMENT_BYTES:
            raise documents.too_large("the request body", field="body")
    if not raw.strip():
        return {}
    try:
        data = documents.loads(bytes(raw), what="the request body", field="body")
    except (ValueError, UnicodeDecodeError):
        raise SpecError(
            "the request body is not valid JSON", code="InvalidRequestContent", target="body"
        ) from None
    if not isinstance(data, dict):
        raise SpecError(
            "the request body must be a JSON object", code="InvalidRequestContent", target="body"
        )
    return data


JsonBody = Annotated[dict[str, Any], Depends(json_body)]


def body_schema(model: str) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON body by its schema in the spec models."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}}},
        }
    }

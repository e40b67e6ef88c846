"""The status codes each operation really answers with, written into ``/openapi.json``.

FastAPI documents a route's declared code and a 422 it never sends here (validation errors
are ARM's 400). Every error answer has ARM's body, ``{"error": {"code", "message", "target"}}``.
Schemathesis checks the server against this document (tests/api/test_schemathesis.py).
"""

from __future__ import annotations

from typing import Any

CLOUD_ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "target": {"type": ["string", "null"]},
                "details": {"type": ["array", "null"]},
            },
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}

_ERRORS = {
    "400": "bad input: the error's target names the field",
    "401": "no token, or one that is unknown or expired",
    "403": "the token may not do this",
    "404": "the resource (or its parent, or the subscription) does not exist",
    "502": "a storage service or executor answered with an error",
    "503": "a storage service or executor could not be reached",
}
_WRITES = {
    "409": "conflicts with the resource's state (in use, being deleted, exists elsewhere)",
    "413": "the request body is over 4 MiB",
}
_DELETE = {
    "200": "deleted",
    "202": "deleting: poll the Azure-AsyncOperation or Location URL",
    "204": "there was nothing to delete",
}
_RANGES = {
    "206": "the requested range of the file",
    "416": "the range lies beyond the file's end",
}


def document(openapi: dict[str, Any]) -> None:
    """Add the codes each operation can answer with, in place."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    schemas["CloudError"] = CLOUD_ERROR
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/CloudError"}}}
    for path, operations in openapi.get("paths", {}).items():
        for method, operation in operations.items():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            responses.pop("422", None)
            codes = dict(_ERRORS)
            if method in ("put", "patch", "post", "delete"):
                codes |= _WRITES
            for code, description in codes.items():
                responses.setdefault(code, {"description": description, "content": error})
            if method == "delete":
                for code, description in _DELETE.items():
                    responses[code] = {"description": description}  # no body
            if method == "post" and "202" in responses:  # terminate: accepted, no body
                responses["202"] = {"description": _DELETE["202"].replace("deleting", "stopping")}
            if method == "get" and ("/download" in path or path.endswith("/content")):
                for code, description in _RANGES.items():
                    responses.setdefault(code, {"description": description})
            if "/operationresults/" in path.lower() or "/operations/" in path.lower():
                responses.setdefault("202", {"description": "the operation is still running"})

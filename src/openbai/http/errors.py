"""Errors as ARM shows them: ``{"error": {"code", "message", "target", "details"}}``.

One table maps openbai's exception tree to HTTP statuses (the first class a raised error
is an instance of wins); request validation failures and unknown routes get the same body.
Bad input is always a 4xx: a 5xx means openbai or a backend it talks to failed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from openbai.errors import (
    AuthError,
    AuthorizationError,
    BackendUnavailableError,
    ConflictError,
    ExecutorError,
    JobNotFoundError,
    NotFoundError,
    OpenBaiError,
    PermissionDeniedError,
    SpecError,
    StorageError,
    TooLargeError,
)
from openbai.http.json_response import JSONResponse

log = logging.getLogger("openbai.api")

#: error class -> HTTP status; the first match wins, so subclasses come before their bases
STATUS: Sequence[tuple[type[OpenBaiError], int]] = (
    (TooLargeError, 413),
    (SpecError, 400),
    (AuthorizationError, 403),
    (AuthError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (JobNotFoundError, 404),
    (ConflictError, 409),
    (BackendUnavailableError, 503),
    (StorageError, 502),
    (ExecutorError, 502),
    (OpenBaiError, 500),
)

_HTTP_CODES = {404: "NotFound", 405: "MethodNotAllowed", 413: "RequestEntityTooLarge"}


def status_of(error: OpenBaiError) -> int:
    return next(status for cls, status in STATUS if isinstance(error, cls))


def error_body(
    code: str, message: str, target: str | None = None, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message, "target": target}
    if details:
        body["details"] = details
    return {"error": body}


def error_response(error: OpenBaiError) -> JSONResponse:
    status = status_of(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(error.code, error.message, error.target), status, headers)


def _target(loc: Sequence[int | str]) -> str:
    """``("query", "maxresults")`` → ``maxresults``; ``("body", "a", 0)`` → ``a[0]``."""
    text = ""
    for part in loc[1:] if loc and loc[0] in ("query", "path", "header", "body") else loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def validation_error(exc: RequestValidationError) -> SpecError:
    """The first validation failure, as a SpecError naming its field."""
    first = exc.errors()[0]
    target = _target(first.get("loc", ()))
    code = "InvalidParameter"
    if target == "api-version":
        code = (
            "MissingApiVersionParameter"
            if first["type"] == "missing"
            else "InvalidApiVersionParameter"
        )
    message = "is required" if first["type"] == "missing" else str(first.get("msg", "is not valid"))
    return SpecError(f"{target}: {message}", code=code, target=target)


async def _on_openbai_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OpenBaiError)
    if status_of(exc) >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc.message)
    return error_response(exc)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(validation_error(exc))


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"Http{exc.status_code}")
    message = str(exc.detail) if exc.status_code != 404 else f"no resource at {request.url.path}"
    return JSONResponse(error_body(code, message), exc.status_code, exc.headers)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse(error_body("InternalServerError", "the server failed; see its log"), 500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(OpenBaiError, _on_openbai_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)

"""One error tree and one error shape: {"error": {"code", "message"}}."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pymongo.errors import ConnectionFailure
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

log = logging.getLogger(__name__)


class AppError(Exception):
    """An error a client can cause or must know about. Subclass per domain."""

    status_code = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        if code is not None:
            self.code = code
        self.headers = headers or {}


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str = "Not authenticated: send 'Authorization: Bearer <token>'"):
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class TooManyRequests(AppError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, int(retry_after)))})
        self.retry_after = retry_after


class ServiceUnavailable(AppError):
    status_code = 503
    code = "unavailable"

    def __init__(self, message: str, retry_after: int = 30) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


DATABASE_RETRY_AFTER_SECONDS = 5


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "the database is unreachable; PaletAI answers again as soon as it is back: "
            f"retry in {DATABASE_RETRY_AFTER_SECONDS} s",
            retry_after=DATABASE_RETRY_AFTER_SECONDS,
        )


def error_response(exc: AppError) -> JSONResponse:
    """The one error shape, as a response (also for middleware outside the handlers)."""
    return JSONResponse(
        error_body(exc.code, exc.message), status_code=exc.status_code, headers=exc.headers
    )


_ANSWERS = {
    400: "malformed request (e.g. JSON nested too deeply)",
    401: "not authenticated: send 'Authorization: Bearer <token>'",
    403: "not allowed",
    404: "not found",
    409: "conflict with what exists",
    413: "request body too large",
    422: "invalid input: the message names each field",
    429: "too many requests: see Retry-After",
    503: "temporarily unavailable (maintenance or the database): see Retry-After",
}


def error_responses(*answers: int | dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each error status it answers, in the one error shape.

    An int takes the usual description; a `{status: "what it means here"}` mapping says it for
    this route. Always JSON, also on HTML routes (a `model` would take the route's media type);
    the schemas are registered by `core/http_guards.py`.
    """
    described: dict[int, str] = {}
    for answer in answers:
        if isinstance(answer, int):
            described[answer] = _ANSWERS.get(answer, "error")
        else:
            described.update(answer)
    out: dict[int | str, dict[str, Any]] = {}
    for code, text in sorted(described.items()):
        name = "ValidationErrorResponse" if code == 422 else "ErrorResponse"
        schema = {"$ref": f"#/components/schemas/{name}"}
        out[code] = {"description": text, "content": {"application/json": {"schema": schema}}}
    return out


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}, **extra}


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def _validation_message(errors: Sequence[Any]) -> str:
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers on this path (Starlette's 405 names only one route's)."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]
    # A mount (static files) matches every method but serves only these.
    return ["GET", "HEAD"] if len(allowed) == len(_METHODS) else allowed


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        return error_response(exc)

    # Selection timeouts, refused or reset connections: an outage, not a bug. Logged once per
    # outage by the client's OutageLog (db/client.py), not once per request.
    @app.exception_handler(ConnectionFailure)
    async def _database_unavailable(request: Request, exc: ConnectionFailure) -> JSONResponse:
        return error_response(DatabaseUnavailable())

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        # Never echo the submitted values back (a password could be among them).
        detail = [{k: v for k, v in e.items() if k not in ("input", "ctx", "url")} for e in errors]
        return JSONResponse(
            error_body("validation_error", _validation_message(errors), detail=detail),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        if exc.status_code == 405:
            allowed = allowed_methods(request)
            headers["Allow"] = ", ".join(allowed)
            message = f"{request.method} is not allowed on {request.url.path}: use " + (
                " or ".join(allowed)
            )
        return JSONResponse(
            jsonable_encoder(error_body(code, message)),
            status_code=exc.status_code,
            headers=headers or None,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body("internal_error", "internal error; it has been logged"), status_code=500
        )

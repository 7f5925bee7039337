"""Guards on every HTTP exchange: request body size and JSON depth limits, and security headers.

Both are pure ASGI middleware so they hold for every route, including ones added later:
- `RequestLimitsMiddleware` reads the body before the app does, counting bytes as they arrive
  (so a chunked body without Content-Length is stopped too), and refuses JSON nested deeper than
  `MAX_JSON_DEPTH` before a parser can recurse on it.
- `SecurityHeadersMiddleware` gives every HTML page a CSP that allows only its own inline
  scripts (by hash), no framing, no sniffing and no referrer; pages that set their own CSP (the
  sandboxed game) keep it untouched. Every other answer gets `nosniff` and `Referrer-Policy`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paletai.config import Settings
from paletai.core.errors import error_body, error_responses
from paletai.core.maintenance import ALWAYS_ALLOWED, WRITE_METHODS
from paletai.core.schemas import ErrorResponse, ValidationErrorResponse

# Bodies the API parses as forms; everything else may reach a JSON parser.
_FORM_TYPES = (b"application/x-www-form-urlencoded", b"multipart/form-data")
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
_OPENING = frozenset(b"[{")


def json_depth(raw: bytes, stop_above: int | None = None) -> int:
    """How deeply `raw` nests arrays and objects (brackets inside strings do not count).

    Linear and non-recursive, so it is safe on any input, valid JSON or not; with `stop_above` it
    returns as soon as the depth passes it.
    """
    depth = deepest = 0
    for byte in _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS):
        if byte in _OPENING:
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_above is not None and deepest > stop_above:
                    break
        else:
            depth -= 1
    return deepest


async def _send_error(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps(error_body(code, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # The client may still be sending: close rather than read the rest.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestLimitsMiddleware:
    """413 past `max_body_bytes` (declared or counted), 400 past `max_json_depth`."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_json_depth: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        too_large = (
            f"request body too large: at most {self.max_body_bytes} bytes are accepted "
            "(a prompt is at most 2,000 characters)"
        )
        declared = headers.get(b"content-length", b"").strip()
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await _send_error(send, 413, "payload_too_large", too_large)
            return

        # Read the whole body first (it is small by definition), then replay it to the app.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see it
                chunks_done: list[Message] = [message]
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _send_error(send, 413, "payload_too_large", too_large)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                chunks_done = []
                break
        body = b"".join(chunks)

        content_type = headers.get(b"content-type", b"").lower()
        if body and not content_type.startswith(_FORM_TYPES):
            if json_depth(body, stop_above=self.max_json_depth) > self.max_json_depth:
                await _send_error(
                    send,
                    400,
                    "json_too_deep",
                    f"JSON nested more than {self.max_json_depth} levels deep: send a flatter body",
                )
                return

        pending: list[Message] = [
            {"type": "http.request", "body": body, "more_body": False},
            *chunks_done,
        ]

        async def replay() -> Message:
            return pending.pop(0) if pending else await receive()

        await self.app(scope, replay, send)


# Swagger UI and ReDoc need inline styles (React style attributes, styled-components) and ReDoc
# runs its search in a blob: worker; scripts run only from our origin or by exact hash.
_PAGE_CSP = (
    "default-src 'self'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script\s*>", re.DOTALL | re.I)
COMMON_HEADERS = {b"x-content-type-options": b"nosniff", b"referrer-policy": b"no-referrer"}


def page_csp(html: bytes) -> str:
    """The CSP for one of our HTML pages: its own inline scripts allowed by hash, nothing else."""
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(m.group(1)).digest()).decode()}'"
        for m in _INLINE_SCRIPT.finditer(html)
    )
    return _PAGE_CSP.format(hashes=hashes)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        parts: list[bytes] = []

        async def send_with_headers(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in COMMON_HEADERS.items() if k not in names]
                message = {**message, "headers": headers}
                content_type = dict(headers).get(b"content-type", b"")
                if content_type.startswith(b"text/html") and (
                    b"content-security-policy" not in names
                ):
                    start = message  # the CSP depends on the page: hold until it is complete
                    return
                await send(message)
            elif start is not None and message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                html = b"".join(parts)
                extra = [
                    (b"content-security-policy", page_csp(html).encode()),
                    (b"x-frame-options", b"DENY"),
                ]
                await send({**start, "headers": [*start["headers"], *extra]})
                await send({"type": "http.response.body", "body": html})
            else:
                await send(message)

        await self.app(scope, receive, send_with_headers)


def _document_guard_answers(app: FastAPI) -> None:
    """Add the answers these guards (and the maintenance switch) give to the OpenAPI document."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()  # cached by FastAPI; the additions below are idempotent
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                answers = operation.setdefault("responses", {})
                extra: list[int] = []
                if "requestBody" in operation:
                    extra += [400, 413]
                if method.upper() in WRITE_METHODS and not path.startswith(ALWAYS_ALLOWED):
                    extra.append(503)
                for status, answer in error_responses(*extra).items():
                    answers.setdefault(str(status), answer)
        schema.setdefault("components", {}).setdefault("schemas", {}).update(_error_schemas(schema))
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _error_schemas(schema: dict[str, Any]) -> dict[str, Any]:
    existing = schema.get("components", {}).get("schemas", {})
    out: dict[str, Any] = {}
    for model in (ErrorResponse, ValidationErrorResponse):
        if model.__name__ not in existing:
            defs = model.model_json_schema(ref_template="#/components/schemas/{model}")
            out.update(defs.pop("$defs", {}))
            out[model.__name__] = defs
    return out


def install_http_guards(app: FastAPI, settings: Settings) -> None:
    """Body and JSON-depth limits, security headers, and their answers in the OpenAPI document.

    Call after the other middleware: the headers go outermost (every answer gets them), the
    limits innermost (their 413/400 still pass through CORS, so browsers can read them).
    """
    app.add_middleware(SecurityHeadersMiddleware)
    app.user_middleware.append(
        Middleware(
            RequestLimitsMiddleware,
            max_body_bytes=settings.MAX_BODY_BYTES,
            max_json_depth=settings.MAX_JSON_DEPTH,
        )
    )
    _document_guard_answers(app)

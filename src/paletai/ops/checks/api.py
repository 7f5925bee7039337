"""The one async client of our own HTTP API, for the operator kit (checks, load, rehearsal).

Every call that goes wrong raises ApiError with one line saying which call and why: no answer
(unreachable, TLS, timeout) or an answer outside the expected statuses (with the API's own
`error.message`). Tokens are passed per call, so one client serves many test users.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

USER_AGENT = "paletai-migrate"
REQUEST_TIMEOUT_SECONDS = 30.0
POLL_SECONDS = 0.25
FINAL_TASK_STATES = ("succeeded", "failed")

StageObserver = Callable[[str, str, float], None]  # (status, stage, seconds since polling began)


class ApiError(Exception):
    """A call to the API failed; the message is one line. `response` is the answer, if any."""

    def __init__(self, message: str, response: httpx.Response | None = None) -> None:
        super().__init__(message)
        self.response = response

    @property
    def status_code(self) -> int:
        """The answer's status; 0 when no answer arrived."""
        return self.response.status_code if self.response is not None else 0


def normalise_base_url(url: str) -> str:
    """`url` without a trailing slash; ValueError unless it is an http(s) URL with a host."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"not an http(s) URL: {url!r} (example: https://NEW_APP.azurewebsites.net)"
        )
    return url.strip().rstrip("/")


def transport_error_message(exc: httpx.HTTPError, url: str) -> str:
    """One line for an exception raised before any answer arrived."""
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer from {url} in time ({type(exc).__name__}): {reason}"
    if "CERTIFICATE" in reason.upper() or "SSL" in reason.upper():
        return f"cannot reach {url}: TLS certificate problem: {reason}"
    return f"cannot reach {url}: {reason}"


def api_error_message(response: httpx.Response) -> str:
    """The API's `error.message` (or FastAPI's 422 `detail`), else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip().replace("\n", " ")
        return text[:200] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        detail = body.get("detail")
        if isinstance(detail, list):
            return "; ".join(
                f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg')}"
                for d in detail
                if isinstance(d, dict)
            )
        if detail:
            return str(detail)
    return json.dumps(body)[:200]


def describe_status(method: str, path: str, response: httpx.Response) -> str:
    return f"{method} {path} answered {response.status_code}: {api_error_message(response)}"


def ensure_status(
    method: str, path: str, response: httpx.Response, expect: tuple[int, ...] | None
) -> httpx.Response:
    """`response`, or ApiError naming the call when its status is not one of `expect` (None:
    any status is fine)."""
    if expect is not None and response.status_code not in expect:
        raise ApiError(describe_status(method, path, response), response)
    return response


def json_object(method: str, path: str, response: httpx.Response) -> dict[str, Any]:
    """The body as a JSON object, or ApiError saying what came instead."""
    try:
        body = response.json()
    except ValueError:
        raise ApiError(
            f"{method} {path} answered {response.status_code} with non-JSON "
            f"({response.headers.get('content-type', '?')}): {response.text[:120]!r}",
            response,
        ) from None
    if not isinstance(body, dict):
        raise ApiError(
            f"{method} {path} answered a JSON {type(body).__name__}, not an object", response
        )
    return body


class ApiClient:
    """One PaletAI's API over one connection pool; use as `async with ApiClient(url) as api`."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
        max_connections: int | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        try:
            self.base_url = normalise_base_url(base_url)
        except ValueError as exc:
            raise ApiError(str(exc)) from None
        self.http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            limits=(
                httpx.Limits(max_connections=max_connections)
                if max_connections
                else httpx.Limits(max_connections=100, max_keepalive_connections=20)  # httpx's
            ),
            follow_redirects=True,
            headers={"User-Agent": USER_AGENT},
            transport=transport,
        )

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.http.aclose()

    # -- plumbing -------------------------------------------------------------------------

    async def call(
        self,
        method: str,
        path: str,
        *,
        expect: tuple[int, ...] | None = (200,),
        token: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request (`token`: as that user; else anonymous); ApiError unless `expect`ed."""
        headers = dict(kwargs.pop("headers", None) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = await self.http.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(transport_error_message(exc, self.base_url + path)) from None
        return ensure_status(method, path, response, expect)

    async def json(
        self, method: str, path: str, *, expect: tuple[int, ...] = (200,), **kwargs: Any
    ) -> dict[str, Any]:
        return json_object(method, path, await self.call(method, path, expect=expect, **kwargs))

    async def get_absolute(self, url: str) -> httpx.Response:
        """GET a URL anywhere (a cover on blob storage), anonymously, as a browser would."""
        absolute = urljoin(self.base_url + "/", url)
        try:
            return await self.http.get(absolute)
        except httpx.HTTPError as exc:
            raise ApiError(transport_error_message(exc, absolute)) from None

    # -- the API (DESIGN.md's table) ------------------------------------------------------

    async def health(self) -> tuple[int, dict[str, Any]]:
        """`GET /health`: its status (200, or 503 when a dependency is down) and body."""
        response = await self.call("GET", "/health", expect=(200, 503))
        return response.status_code, json_object("GET", "/health", response)

    async def register(
        self, email: str, password: str, *, expect: tuple[int, ...] = (200,)
    ) -> httpx.Response:
        return await self.call(
            "POST", "/auth/register", json={"email": email, "password": password}, expect=expect
        )

    async def register_token(self, email: str, password: str) -> str:
        """Register a new account; its access token."""
        response = await self.register(email, password)
        return access_token("POST /auth/register", json_object("POST", "/auth/register", response))

    async def login(self, email: str, password: str) -> dict[str, Any]:
        """`POST /auth/login` with JSON; its body (access_token, token_type, expires_in)."""
        return await self.json("POST", "/auth/login", json={"email": email, "password": password})

    async def login_form(self, email: str, password: str) -> dict[str, Any]:
        """`POST /auth/login` as Swagger's OAuth2 form does it."""
        form = {"username": email, "password": password, "grant_type": "password"}
        return await self.json("POST", "/auth/login", data=form)

    async def me(self, token: str) -> dict[str, Any]:
        return await self.json("GET", "/auth/me", token=token)

    async def create_game(self, prompt: str, token: str) -> dict[str, Any]:
        """`POST /games`: the queued task (`task_id`, `status`, `status_url`)."""
        body = await self.json(
            "POST", "/games", json={"prompt": prompt}, token=token, expect=(200, 202)
        )
        if not body.get("task_id"):
            raise ApiError(f"POST /games answered no task_id: {body}")
        return body

    async def task(self, task_id: str, token: str) -> dict[str, Any]:
        return await self.json("GET", f"/tasks/{task_id}", token=token)

    async def wait_for_task(
        self,
        task_id: str,
        token: str,
        *,
        within: float,
        on_stage: StageObserver | None = None,
    ) -> dict[str, Any]:
        """Poll `GET /tasks/{id}` until it succeeds or fails, or `within` s have passed: the
        last body either way (its `status` says which); `on_stage` sees each new stage."""
        started = time.monotonic()
        seen: tuple[str, str] | None = None
        while True:
            body = await self.task(task_id, token)
            status, stage = str(body.get("status")), str(body.get("stage"))
            if (status, stage) != seen:
                seen = (status, stage)
                if on_stage is not None:
                    on_stage(status, stage, time.monotonic() - started)
            if status in FINAL_TASK_STATES or time.monotonic() - started > within:
                return body
            await asyncio.sleep(POLL_SECONDS)

    async def wait_for_tasks(
        self, tasks: Iterable[tuple[str, str]], *, within: float, concurrency: int = 4
    ) -> dict[str, dict[str, Any] | ApiError]:
        """`wait_for_task` for many (task_id, token) pairs, a few at a time: task_id -> the
        last body, or the ApiError that ended its polling (e.g. a 404: the task is unknown)."""
        deadline = time.monotonic() + within
        slots = asyncio.Semaphore(concurrency)
        out: dict[str, dict[str, Any] | ApiError] = {}

        async def one(task_id: str, token: str) -> None:
            async with slots:
                try:
                    left = max(0.0, deadline - time.monotonic())
                    out[task_id] = await self.wait_for_task(task_id, token, within=left)
                except ApiError as exc:
                    out[task_id] = exc

        await asyncio.gather(*(one(task_id, token) for task_id, token in tasks))
        return out

    async def game(self, game_id: str, token: str | None = None) -> dict[str, Any]:
        return await self.json("GET", f"/games/{game_id}", token=token)

    async def play(self, game_id: str) -> httpx.Response:
        return await self.call("GET", f"/games/{game_id}/play")

    async def feed(self, *, limit: int = 20, cursor: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        return await self.json("GET", "/games/feed", params=params)

    async def like(self, game_id: str, token: str) -> dict[str, Any]:
        return await self.json("POST", f"/games/{game_id}/like", token=token)

    async def unlike(self, game_id: str, token: str) -> dict[str, Any]:
        return await self.json("DELETE", f"/games/{game_id}/like", token=token)

    async def delete_game(self, game_id: str, token: str) -> None:
        await self.call("DELETE", f"/games/{game_id}", token=token, expect=(200, 204))

    async def subscribe(self, player_id: str, token: str) -> dict[str, Any]:
        body = {"player_id": player_id}
        return await self.json("POST", "/notifications/subscribe", json=body, token=token)

    async def unsubscribe(self, player_id: str, token: str) -> dict[str, Any]:
        body = {"player_id": player_id}
        return await self.json("DELETE", "/notifications/subscribe", json=body, token=token)

    async def set_maintenance(self, enabled: bool, admin_token: str, reason: str = "") -> bool:
        """`POST /admin/maintenance`; whether maintenance is now on."""
        body = await self.json(
            "POST",
            "/admin/maintenance",
            json={"enabled": enabled, "reason": reason},
            token=admin_token,
        )
        return body.get("maintenance") is True


def access_token(call: str, body: dict[str, Any]) -> str:
    """The `access_token` of a register/login answer, or ApiError naming the call."""
    token = body.get("access_token")
    if not token:
        raise ApiError(f"{call} answered without an access_token: keys {sorted(body)}")
    return str(token)

"""No 500 from any input, and the HTTP surface: cursors, body and JSON-depth limits, 405 with
Allow, security headers on HTML pages, and the error answers in the OpenAPI document."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from paletai.config import Settings
from paletai.core.context import AppContext
from paletai.core.http_guards import json_depth
from paletai.games.router import PLAY_CSP
from tests.conftest import create_game, create_user, running_app


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code
    message: str = body["error"]["message"]
    assert message
    return message


# --- cursors ------------------------------------------------------------------------------

HUGE = str(2**64).encode()


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/games/feed", {"cursor": b64(HUGE)}),
        ("/games/feed", {"sort": "popular", "cursor": b64(b"1." + HUGE)}),
        ("/games/feed", {"sort": "popular", "cursor": b64(HUGE + b".1")}),
        ("/games/feed", {"cursor": b64(b"-" + HUGE)}),
        ("/users/me/games", {"cursor": b64(HUGE)}),
    ],
)
async def test_cursor_beyond_int64_is_a_422_naming_the_cursor(
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    path: str,
    params: dict[str, str],
) -> None:
    player = await create_user(client)
    with caplog.at_level(logging.ERROR):
        response = await client.get(path, params=params, headers=player.headers)
    assert "cursor" in assert_error(response, 422, "invalid_cursor")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "cursor",
    [b64("١٢".encode()), b64(b"+5"), b64(b" 5"), b64(b"1_000"), b64(b"\xff\xfe"), "a" * 65, "ab$"],
)
async def test_malformed_cursors_are_422(client: httpx.AsyncClient, cursor: str) -> None:
    response = await client.get("/games/feed", params={"cursor": cursor})
    assert response.status_code == 422, response.text
    assert "cursor" in response.json()["error"]["message"]


async def test_a_real_cursor_still_pages(client: httpx.AsyncClient, ctx: AppContext) -> None:
    for _ in range(3):
        await create_game(ctx.db)
    first = (await client.get("/games/feed", params={"limit": 2, "sort": "popular"})).json()
    second = await client.get(
        "/games/feed", params={"limit": 2, "sort": "popular", "cursor": first["next_cursor"]}
    )
    assert second.status_code == 200
    assert len(second.json()["items"]) == 1


async def test_newest_reads_the_rank_of_a_popular_cursor(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    for _ in range(3):
        await create_game(ctx.db)
    newest = (await client.get("/games/feed")).json()["items"]
    rank = (await ctx.db["games"].find_one({"_id": newest[1]["id"]}))["rank"]
    response = await client.get("/games/feed", params={"cursor": b64(f"7.{rank}".encode())})
    assert response.status_code == 200
    assert [g["id"] for g in response.json()["items"]] == [newest[2]["id"]]


# --- body size and JSON depth -------------------------------------------------------------


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_json_depth_ignores_brackets_in_strings() -> None:
    assert json_depth(b'{"a": [1, {"b": "[[[[{{{{"}]}') == 3
    assert json_depth(b'{"a": "\\"[[["}') == 1
    assert json_depth(nested(5000)) == 5000
    assert json_depth(b"") == 0
    assert json_depth(nested(5000), stop_above=32) == 33


@pytest.mark.parametrize("path", ["/auth/login", "/auth/register", "/games"])
async def test_deep_json_is_a_400_not_a_recursion_error(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    player = await create_user(client)
    with caplog.at_level(logging.ERROR):
        response = await client.post(
            path,
            content=nested(1000),
            headers={**player.headers, "content-type": "application/json"},
        )
    assert "32" in assert_error(response, 400, "json_too_deep")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_json_within_the_depth_limit_reaches_validation(client: httpx.AsyncClient) -> None:
    body = b'{"email": ' + nested(20) + b', "password": "x"}'
    response = await client.post(
        "/auth/login", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text


async def test_large_body_with_content_length_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/login",
        content=b'{"email": "' + b"a" * 200_000 + b'"}',
        headers={"content-type": "application/json"},
    )
    message = assert_error(response, 413, "payload_too_large")
    assert "65536 bytes" in message
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_large_chunked_body_without_content_length_is_413(
    client: httpx.AsyncClient,
) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(1000):  # 1 MB if nobody stops it
            sent += 1
            yield b" " * 1000

    response = await client.post(
        "/auth/register", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_error(response, 413, "payload_too_large")


async def test_a_full_length_prompt_is_well_under_the_limit(client: httpx.AsyncClient) -> None:
    player = await create_user(client)
    # 2,000 characters outside the BMP, ASCII-escaped: the largest prompt a client can send.
    body = json.dumps({"prompt": "\U0001f40d" * 2000}, ensure_ascii=True).encode()
    assert len(body) > 24_000
    response = await client.post(
        "/games", content=body, headers={**player.headers, "content-type": "application/json"}
    )
    assert response.status_code == 202, response.text


async def test_body_limit_follows_the_setting(settings_with: Callable[..., Settings]) -> None:
    async with running_app(settings_with(MAX_BODY_BYTES=2048, MAX_JSON_DEPTH=3)) as (_, client):
        big = await client.post("/auth/login", json={"email": "a" * 3000, "password": "x"})
        assert "2048 bytes" in assert_error(big, 413, "payload_too_large")
        deep = await client.post("/auth/login", json={"email": [[["x"]]], "password": "x"})
        assert_error(deep, 400, "json_too_deep")


# --- 405 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/games/abc", "GET, DELETE"),
        ("PATCH", "/auth/me", "GET"),
        ("GET", "/auth/login", "POST"),
        ("PUT", "/notifications/subscribe", "POST, DELETE"),
    ],
)
async def test_405_names_the_allowed_methods(
    client: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    response = await client.request(method, path)
    message = assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == allow
    assert allow.split(", ")[0] in message


# --- security headers ---------------------------------------------------------------------


def inline_scripts(html: str) -> list[str]:
    return re.findall(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", html, re.DOTALL)


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect"])
async def test_html_pages_get_a_csp_and_no_framing(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    csp = dict(
        d.strip().split(" ", 1) for d in response.headers["content-security-policy"].split(";")
    )
    assert csp["frame-ancestors"] == "'none'"
    assert csp["object-src"] == "'none'"
    assert "'unsafe-inline'" not in csp["script-src"]
    assert "'unsafe-eval'" not in csp["script-src"]
    # Exactly this page's inline scripts are allowed, by hash.
    expected = {
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
        for s in inline_scripts(response.text)
    }
    allowed = set(csp["script-src"].split()) - {"'self'"}
    assert allowed == expected


async def test_json_answers_get_nosniff(client: httpx.AsyncClient) -> None:
    for response in (await client.get("/health"), await client.get("/no/such/route")):
        assert response.headers["content-type"] == "application/json"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" not in response.headers


async def test_play_page_keeps_its_own_sandbox_csp(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    game_id = await create_game(ctx.db)
    response = await client.get(f"/games/{game_id}/play")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == PLAY_CSP
    assert len(response.headers.get_list("content-security-policy")) == 1
    # Clients embed the game in a frame: nothing here may forbid that.
    assert "x-frame-options" not in response.headers
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


# --- the OpenAPI document -----------------------------------------------------------------


async def test_openapi_lists_every_error_answer(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    ops = {
        (method.upper(), path): op
        for path, item in schema["paths"].items()
        for method, op in item.items()
    }
    expect = {
        ("POST", "/auth/register"): {"400", "409", "413", "422", "503"},
        ("POST", "/auth/login"): {"400", "401", "413", "422", "429"},
        ("GET", "/auth/me"): {"401"},
        ("POST", "/games"): {"400", "401", "413", "422", "429", "503"},
        ("GET", "/games/feed"): {"401", "422"},
        ("GET", "/games/{game_id}"): {"401", "404", "422"},
        ("DELETE", "/games/{game_id}"): {"401", "403", "404", "422", "503"},
        ("GET", "/tasks/{task_id}"): {"401", "404", "422"},
        ("POST", "/admin/maintenance"): {"400", "401", "403", "413", "422"},
    }
    for key, codes in expect.items():
        answers = ops[key]["responses"]
        assert codes <= set(answers), (key, sorted(answers))
        for code in codes:
            ref = answers[code]["content"]["application/json"]["schema"]["$ref"]
            assert ref.rsplit("/", 1)[1] in ("ErrorResponse", "ValidationErrorResponse")
    # Maintenance never pauses the switch itself or logins.
    assert "503" not in ops[("POST", "/admin/maintenance")]["responses"]
    # A login's only 503 is a busy password-hashing slot, never maintenance.
    login_busy = ops[("POST", "/auth/login")]["responses"]["503"]["description"]
    assert "maintenance" not in login_busy
    assert "hashing" in login_busy
    error = schema["components"]["schemas"]["ErrorResponse"]
    assert error["required"] == ["error"]
    cursor = next(p for p in ops[("GET", "/games/feed")]["parameters"] if p["name"] == "cursor")
    string = next(s for s in cursor["schema"]["anyOf"] if s.get("type") == "string")
    assert string["maxLength"] == 64
    assert string["pattern"] == "^[A-Za-z0-9_-]+$"

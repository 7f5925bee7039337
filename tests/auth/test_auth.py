from __future__ import annotations

from collections.abc import Callable

import httpx
import jwt
import pytest

from paletai.config import Settings
from tests.conftest import create_user, running_app


async def test_register_returns_user_and_working_token(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/register",
        json={"email": "Ada@Example.com", "password": "long enough 1", "username": "ada"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["email"] == "ada@example.com"
    assert body["user"]["username"] == "ada"
    assert body["token_type"] == "bearer"
    assert "password" not in str(body["user"])
    me = await client.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["id"] == body["user"]["id"]


async def test_duplicate_email_is_409_case_insensitive(client: httpx.AsyncClient) -> None:
    await create_user(client, email="dup@example.com")
    response = await client.post(
        "/auth/register", json={"email": "DUP@example.COM", "password": "another pass"}
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "password": "long enough"},
        {"email": "a@example.com", "password": "short"},
        {"email": {"$ne": None}, "password": "long enough"},
        {"email": "a@example.com", "password": {"$gt": ""}},
        {"email": "a@example.com"},
        {"email": "a@example.com", "password": "long enough", "is_admin": True},
        {"email": "a@example.com", "password": "long enough", "username": "<b>"},
    ],
)
async def test_register_rejects_bad_input(client: httpx.AsyncClient, body: object) -> None:
    response = await client.post("/auth/register", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["message"]
    # The submitted password is never echoed back.
    assert "long enough" not in response.text


async def test_login_json_and_oauth2_form(client: httpx.AsyncClient) -> None:
    user = await create_user(client, email="form@example.com", password="pass word 123")
    as_json = await client.post(
        "/auth/login", json={"email": "FORM@example.com", "password": "pass word 123"}
    )
    assert as_json.status_code == 200
    assert as_json.json()["token_type"] == "bearer"
    assert as_json.json()["expires_in"] > 0
    as_form = await client.post(
        "/auth/login",
        data={
            "username": "form@example.com",
            "password": "pass word 123",
            "grant_type": "password",
        },
    )
    assert as_form.status_code == 200
    token = as_form.json()["access_token"]
    me = await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["id"] == user.id


async def test_login_wrong_password_and_unknown_user_are_401(client: httpx.AsyncClient) -> None:
    await create_user(client, email="known@example.com", password="right password")
    wrong = await client.post(
        "/auth/login", json={"email": "known@example.com", "password": "wrong password"}
    )
    unknown = await client.post(
        "/auth/login", json={"email": "nobody@example.com", "password": "wrong password"}
    )
    assert wrong.status_code == unknown.status_code == 401
    # Same message either way: no hint whether the account exists.
    assert wrong.json() == unknown.json()


async def test_login_rejects_operator_objects(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/login", json={"email": {"$ne": None}, "password": {"$ne": None}}
    )
    assert response.status_code == 422


async def test_login_garbage_body_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


async def test_repeated_failures_are_throttled(client: httpx.AsyncClient) -> None:
    user = await create_user(client, email="victim@example.com", password="the right one")
    statuses = []
    for _ in range(6):
        r = await client.post("/auth/login", json={"email": user.email, "password": "guess guess"})
        statuses.append(r.status_code)
    assert statuses[:5] == [401] * 5
    assert statuses[5] == 429
    blocked = await client.post(
        "/auth/login", json={"email": user.email, "password": "the right one"}
    )
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0


async def test_me_requires_a_valid_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/auth/me")).status_code == 401
    bad = await client.get("/auth/me", headers={"Authorization": "Bearer not.a.token"})
    assert bad.status_code == 401
    forged = jwt.encode(
        {"sub": "x", "exp": 9999999999, "typ": "access"}, "wrong-secret-" + "w" * 32
    )
    r = await client.get("/auth/me", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"


async def test_expired_token_is_401(client: httpx.AsyncClient, ctx: object) -> None:
    user = await create_user(client)
    from paletai.core.context import AppContext

    assert isinstance(ctx, AppContext)
    expired = jwt.encode(
        {"sub": user.id, "exp": 1_000_000, "typ": "access"}, ctx.jwt_secret, algorithm="HS256"
    )
    r = await client.get("/auth/me", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401


async def test_me_reports_daily_prompts(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    body = (await client.get("/auth/me", headers=user.headers)).json()
    assert body["daily_prompt_limit"] == 20
    assert body["prompts_remaining_today"] == 20


async def test_failures_from_one_address_are_throttled_across_emails(
    settings_with: Callable[..., Settings],
) -> None:
    async with running_app(settings_with(LOGIN_MAX_FAILURES_PER_IP=4)) as (_, client):
        codes = []
        for i in range(5):
            r = await client.post(
                "/auth/login",
                json={"email": f"guess{i}@example.com", "password": "wrong password"},
                headers={"X-Forwarded-For": "203.0.113.7:5555"},
            )
            codes.append(r.status_code)
        assert codes == [401, 401, 401, 401, 429]
        other = await client.post(
            "/auth/login",
            json={"email": "guess9@example.com", "password": "wrong password"},
            headers={"X-Forwarded-For": "198.51.100.1"},
        )
        assert other.status_code == 401


async def test_cors_allows_only_the_configured_origins(
    settings_with: Callable[..., Settings],
) -> None:
    settings = settings_with(CORS_ORIGINS="https://app.paletai.example")
    async with running_app(settings) as (_, client):
        allowed = await client.options(
            "/games/feed",
            headers={
                "Origin": "https://app.paletai.example",
                "Access-Control-Request-Method": "GET",
            },
        )
        assert allowed.headers["access-control-allow-origin"] == "https://app.paletai.example"
        refused = await client.get("/games/feed", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in refused.headers

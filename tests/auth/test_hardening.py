"""Issue 12: password hashing that cannot be turned into a memory bomb, throttles keyed by an
address the client cannot choose, a lockout that cannot be used against the owner, passwords as
typed and unique usernames."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

import anyio
import httpx
import pytest
from argon2 import PasswordHasher

from paletai.auth.throttle import LoginThrottle, account_delay
from paletai.config import Settings, SettingsError, load_settings
from paletai.core.context import AppContext
from paletai.core.network import TrustedProxies, address_bucket, resolve_client
from paletai.core.security import ARGON2_MEMORY_KIB, PasswordHashing, hash_password
from paletai.db.client import Database
from paletai.users.repository import UsersRepository
from tests.conftest import create_user, running_app


def register_body(n: int | str, **extra: str) -> dict[str, str]:
    return {"email": f"user{n}@example.com", "password": "long enough 1", **extra}


# --- bounded hashing --------------------------------------------------------------------------


async def test_busy_hashing_slots_answer_503_with_retry_after(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await create_user(client, email="known@example.com", password="right password")
    entered, release = threading.Event(), threading.Event()

    def slow_hash(password: str) -> str:
        entered.set()
        release.wait(10)
        return hash_password(password)

    ctx.passwords = PasswordHashing(1, wait_seconds=0.05, hash_fn=slow_hash)
    first = asyncio.create_task(client.post("/auth/register", json=register_body(1)))
    try:
        assert await anyio.to_thread.run_sync(entered.wait, 10)
        # The only slot is held: a second registration and a login wait briefly, then 503.
        refused = await client.post("/auth/register", json=register_body(2))
        login = await client.post(
            "/auth/login", json={"email": "known@example.com", "password": "right password"}
        )
        for response in (refused, login):
            assert response.status_code == 503
            assert response.json()["error"]["code"] == "unavailable"
            assert "busy" in response.json()["error"]["message"]
            assert int(response.headers["Retry-After"]) >= 1
    finally:
        release.set()
    assert (await first).status_code == 200
    # The slot is free again.
    assert (await client.post("/auth/register", json=register_body(3))).status_code == 200


async def test_returning_logins_are_served_before_strangers() -> None:
    order: list[str] = []
    entered, release = threading.Event(), threading.Event()

    def slow_hash(password: str) -> str:
        entered.set()
        release.wait(10)
        order.append(password)
        return password

    def verify(password: str, password_hash: str | None) -> bool:
        order.append(password)
        return True

    hashing = PasswordHashing(1, wait_seconds=30, hash_fn=slow_hash, verify_fn=verify)
    running = asyncio.create_task(hashing.hash("running"))
    assert await anyio.to_thread.run_sync(entered.wait, 10)
    stranger = asyncio.create_task(hashing.verify("stranger", None))
    for _ in range(5):  # let it reach the queue
        await asyncio.sleep(0)
    returning = asyncio.create_task(hashing.verify("returning", None, priority=True))
    for _ in range(5):
        await asyncio.sleep(0)
    release.set()
    await asyncio.gather(running, stranger, returning)
    assert order == ["running", "returning", "stranger"]


async def test_old_argon2_hashes_verify_and_are_rehashed_on_login(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    old_hash = PasswordHasher().hash("legacy password")  # argon2-cffi's default: 64 MiB
    assert "m=65536" in old_hash
    user = await UsersRepository(ctx.db).create("old@example.com", "oldtimer", old_hash)
    response = await client.post(
        "/auth/login", json={"email": "old@example.com", "password": "legacy password"}
    )
    assert response.status_code == 200
    stored = await UsersRepository(ctx.db).get(user.id)
    assert stored is not None
    assert f"m={ARGON2_MEMORY_KIB},t=2,p=1" in stored.password_hash
    again = await client.post(
        "/auth/login", json={"email": "old@example.com", "password": "legacy password"}
    )
    assert again.status_code == 200


async def test_old_accounts_stored_stripped_still_log_in_with_their_spaces(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    # Before passwords were kept as typed, "  old pass  " was stored as "old pass".
    old_hash = PasswordHasher().hash("old pass")
    await UsersRepository(ctx.db).create("spaces@example.com", "spacey", old_hash)
    for typed in ("  old pass  ", "old pass"):
        body = {"email": "spaces@example.com", "password": typed}
        assert (await client.post("/auth/login", json=body)).status_code == 200, typed
    # New hashes have no such fallback: the password is exactly what was typed.
    assert (
        await client.post(
            "/auth/login", json={"email": "spaces@example.com", "password": " old pass "}
        )
    ).status_code == 401


# --- registration throttle ----------------------------------------------------------------------


async def test_registration_is_throttled_per_address(
    settings_with: Callable[..., Settings],
) -> None:
    async with running_app(settings_with(REGISTER_MAX_PER_IP=2)) as (_, client):
        here = {"X-Forwarded-For": "203.0.113.5"}
        codes = [
            (await client.post("/auth/register", json=register_body(i), headers=here)).status_code
            for i in range(3)
        ]
        assert codes == [200, 200, 429]
        refused = await client.post("/auth/register", json=register_body(9), headers=here)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        assert "your address" in refused.json()["error"]["message"]
        assert int(refused.headers["Retry-After"]) > 0
        elsewhere = {"X-Forwarded-For": "203.0.113.6"}
        other = await client.post("/auth/register", json=register_body(10), headers=elsewhere)
        assert other.status_code == 200


async def test_a_refused_address_is_answered_without_the_database(
    settings_with: Callable[..., Settings],
) -> None:
    async with running_app(settings_with(LOGIN_MAX_FAILURES_PER_IP=2)) as (app, client):

        async def attempt() -> httpx.Response:
            return await client.post(
                "/auth/login",
                json={"email": "any@example.com", "password": "wrong password"},
                headers={"X-Forwarded-For": "203.0.113.9"},
            )

        assert [(await attempt()).status_code for _ in range(3)] == [401, 401, 429]
        # The process remembers the refusal until Retry-After: dropping the counts changes
        # nothing for it (a flood past its limit costs no database round trip).
        ctx: AppContext = app.state.ctx
        await ctx.db.drop_collection("login_failures")
        again = await attempt()
        assert again.status_code == 429
        assert int(again.headers["Retry-After"]) > 0


async def test_registration_is_throttled_globally(settings_with: Callable[..., Settings]) -> None:
    async with running_app(settings_with(REGISTER_MAX_TOTAL=3)) as (_, client):
        codes = []
        for i in range(5):
            headers = {"X-Forwarded-For": f"198.51.100.{i + 1}"}
            r = await client.post("/auth/register", json=register_body(i), headers=headers)
            codes.append(r.status_code)
        assert codes == [200, 200, 200, 429, 429]
        assert "everyone" in r.json()["error"]["message"]


# --- client addresses ---------------------------------------------------------------------------


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(
    settings_with: Callable[..., Settings],
) -> None:
    settings = settings_with(LOGIN_MAX_FAILURES_PER_IP=3, REGISTER_MAX_PER_IP=2)
    async with running_app(settings, peer=("192.0.2.50", 40000)) as (_, client):
        codes = []
        for i in range(5):
            r = await client.post(
                "/auth/login",
                json={"email": f"guess{i}@example.com", "password": "wrong password"},
                headers={"X-Forwarded-For": f"10.9.8.{i}"},
            )
            codes.append(r.status_code)
        assert codes == [401, 401, 401, 429, 429]
        registered = [
            (
                await client.post(
                    "/auth/register",
                    json=register_body(i),
                    headers={"X-Forwarded-For": f"10.7.7.{i}"},
                )
            ).status_code
            for i in range(3)
        ]
        assert registered == [200, 200, 429]


async def test_forwarded_for_from_a_trusted_proxy_is_honoured(
    settings_with: Callable[..., Settings],
) -> None:
    settings = settings_with(LOGIN_MAX_FAILURES_PER_IP=2, FORWARDED_ALLOW_IPS="10.0.0.0/8")
    async with running_app(settings, peer=("10.1.2.3", 40000)) as (_, client):

        async def fail(forwarded: str) -> int:
            r = await client.post(
                "/auth/login",
                json={"email": "someone@example.com", "password": "wrong password"},
                headers={"X-Forwarded-For": forwarded},
            )
            return r.status_code

        # App Service's form (port after a colon); a client-written hop before it is ignored.
        assert await fail("203.0.113.7:5555") == 401
        assert await fail("6.6.6.6, 203.0.113.7:6000") == 401
        assert await fail("203.0.113.7") == 429
        assert await fail("203.0.113.8") == 401


async def test_ipv6_clients_are_counted_by_their_64(
    settings_with: Callable[..., Settings],
) -> None:
    async with running_app(settings_with(LOGIN_MAX_FAILURES_PER_IP=2)) as (_, client):

        async def fail(address: str) -> int:
            r = await client.post(
                "/auth/login",
                json={"email": "v6@example.com", "password": "wrong password"},
                headers={"X-Forwarded-For": address},
            )
            return r.status_code

        assert await fail("2001:db8:1:2::1") == 401
        assert await fail("[2001:db8:1:2:ffff::9]:443") == 401
        assert await fail("2001:db8:1:2:abcd::42") == 429
        assert await fail("2001:db8:1:3::1") == 401


def test_resolve_client_walks_the_chain_from_the_right() -> None:
    proxies = TrustedProxies(("127.0.0.1", "10.0.0.0/8"))
    assert resolve_client("192.0.2.1", "203.0.113.7", proxies) == "192.0.2.1"
    assert resolve_client("127.0.0.1", "spoof, 203.0.113.7, 10.0.0.4", proxies) == "203.0.113.7"
    assert resolve_client("127.0.0.1", "10.0.0.9, 10.0.0.4", proxies) == "10.0.0.9"
    assert resolve_client("127.0.0.1", "not-an-ip", proxies) == "127.0.0.1"
    assert resolve_client("127.0.0.1", None, proxies) == "127.0.0.1"
    everyone = TrustedProxies(("*",))
    assert resolve_client("192.0.2.1", "203.0.113.7:80, 198.51.100.2", everyone) == "203.0.113.7"
    assert address_bucket("2001:db8:1:2::1") == address_bucket("2001:db8:1:2:f::f")
    assert address_bucket("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert address_bucket("::ffff:203.0.113.7") == "203.0.113.7"


def test_bad_forwarded_allow_ips_names_the_setting() -> None:
    with pytest.raises(SettingsError, match="FORWARDED_ALLOW_IPS"):
        load_settings(_env_file=None, FORWARDED_ALLOW_IPS="10.0.0.0/8,proxy.example")
    ok = load_settings(_env_file=None, FORWARDED_ALLOW_IPS="*")
    assert ok.FORWARDED_ALLOW_IPS == ["*"]
    assert load_settings(_env_file=None).FORWARDED_ALLOW_IPS == ["127.0.0.1", "::1"]


# --- lockout ------------------------------------------------------------------------------------


async def test_the_owner_logs_in_during_a_lockout_attack_from_other_addresses(
    settings_with: Callable[..., Settings],
) -> None:
    settings = settings_with(LOGIN_ACCOUNT_SLOWDOWN_AFTER=3, LOGIN_ACCOUNT_MAX_DELAY_SECONDS=0.01)
    async with running_app(settings) as (app, client):
        owner = await create_user(client, email="owner@example.com", password="the right one")
        attack = []
        for i in range(12):
            r = await client.post(
                "/auth/login",
                json={"email": owner.email, "password": f"guess {i}"},
                headers={"X-Forwarded-For": f"198.51.100.{i + 1}"},
            )
            attack.append(r.status_code)
        assert attack == [401] * 12
        # The account is now slowed down for everyone (a delay, never a refusal) ...
        ctx: AppContext = app.state.ctx
        throttle = LoginThrottle(ctx.db, settings)
        assert (await throttle.begin(owner.email, "192.0.2.99")).delay > 0
        # ... and the owner, from their own address, gets in with the right password.
        mine = {"X-Forwarded-For": "192.0.2.77"}
        ok = await client.post(
            "/auth/login", json={"email": owner.email, "password": owner.password}, headers=mine
        )
        assert ok.status_code == 200
        # Strict per (account, address): five failures from one address lock only that pair.
        for _ in range(5):
            await client.post(
                "/auth/login",
                json={"email": owner.email, "password": "wrong"},
                headers={"X-Forwarded-For": "198.51.100.200"},
            )
        locked = await client.post(
            "/auth/login",
            json={"email": owner.email, "password": owner.password},
            headers={"X-Forwarded-For": "198.51.100.200"},
        )
        assert locked.status_code == 429
        still_ok = await client.post(
            "/auth/login", json={"email": owner.email, "password": owner.password}, headers=mine
        )
        assert still_ok.status_code == 200


def test_account_delay_grows_and_is_capped() -> None:
    delays = [account_delay(n, 10, 3.0) for n in (0, 9, 10, 11, 12, 13, 14, 1000)]
    assert delays == [0.0, 0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 3.0]


# --- passwords and usernames --------------------------------------------------------------------


async def test_password_with_surrounding_spaces_works_exactly_as_typed(
    client: httpx.AsyncClient,
) -> None:
    typed = "  spaced pass  "
    assert (
        await client.post("/auth/register", json={"email": "sp@example.com", "password": typed})
    ).status_code == 200
    exact = await client.post("/auth/login", json={"email": "sp@example.com", "password": typed})
    assert exact.status_code == 200
    stripped = await client.post(
        "/auth/login", json={"email": "sp@example.com", "password": typed.strip()}
    )
    assert stripped.status_code == 401
    form = await client.post("/auth/login", data={"username": "sp@example.com", "password": typed})
    assert form.status_code == 200


@pytest.mark.parametrize("password", [" " * 12, "\t \n" * 4, " short "])
async def test_blank_or_short_password_is_a_clear_422(
    client: httpx.AsyncClient, password: str
) -> None:
    response = await client.post(
        "/auth/register", json={"email": "blank@example.com", "password": password}
    )
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    assert message.startswith("password:")
    assert "spaces" in message or "at least 8" in message


async def test_duplicate_username_in_another_case_is_409(client: httpx.AsyncClient) -> None:
    first = await client.post("/auth/register", json=register_body(1, username="Admin"))
    assert first.status_code == 200
    second = await client.post("/auth/register", json=register_body(2, username="admin"))
    assert second.status_code == 409
    error = second.json()["error"]
    assert error["code"] == "conflict"
    assert "username" in error["message"]
    assert "'admin'" in error["message"]


async def test_usernames_derived_from_emails_do_not_collide(client: httpx.AsyncClient) -> None:
    body = {"password": "pw pw pw 1"}
    a = await client.post("/auth/register", json={"email": "sam@a.example.com", **body})
    b = await client.post("/auth/register", json={"email": "SAM@b.example.com", **body})
    assert a.status_code == b.status_code == 200
    names = {a.json()["user"]["username"].lower(), b.json()["user"]["username"].lower()}
    assert len(names) == 2
    assert "sam" in names


async def test_startup_survives_colliding_usernames_and_names_them(
    db: Database, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    from paletai.core.timeutil import utcnow

    # Data from before usernames were unique: two spellings of one name, no username_lower.
    await db["users"].insert_many(
        [
            {
                "_id": f"u{i}",
                "email": f"a{i}@example.com",
                "username": name,
                "password_hash": "x",
                "created_at": utcnow(),
            }
            for i, name in enumerate(["Admin", "admin", "bob"])
        ]
    )
    with caplog.at_level(logging.WARNING):
        async with running_app(settings) as (_, client):
            assert (await client.get("/health")).status_code == 200
            # Still refused by the check before inserting, although the index could not be made.
            clash = await client.post("/auth/register", json=register_body(5, username="BOB"))
            assert clash.status_code == 409
    assert "admin" in caplog.text
    assert "differ only in case" in caplog.text


async def test_openapi_lists_the_error_answers(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    register = paths["/auth/register"]["post"]["responses"]
    login = paths["/auth/login"]["post"]["responses"]
    leave = paths["/users/me"]["delete"]["responses"]
    assert {"200", "409", "422", "429", "503"} <= set(register)
    assert {"200", "401", "429", "503"} <= set(login)
    assert {"204", "401"} <= set(leave)
    schema = register["429"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ErrorResponse"}

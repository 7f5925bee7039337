from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from paletai.config import Settings
from paletai.core.context import AppContext
from tests.conftest import create_game, create_user, running_app, wait_for_task


async def test_subscribe_and_unsubscribe(client: httpx.AsyncClient, ctx: AppContext) -> None:
    user = await create_user(client)
    for _ in range(2):
        r = await client.post(
            "/notifications/subscribe", json={"player_id": "abc-123"}, headers=user.headers
        )
        assert r.status_code == 200
        assert r.json() == {"subscribed": True}
    assert await ctx.db["subscriptions"].count_documents({"user_id": user.id}) == 1
    r = await client.request(
        "DELETE", "/notifications/subscribe", json={"player_id": "abc-123"}, headers=user.headers
    )
    assert r.json() == {"subscribed": False}
    assert await ctx.db["subscriptions"].count_documents({"user_id": user.id}) == 0


async def test_subscribe_validates(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    assert (
        await client.post("/notifications/subscribe", json={"player_id": "x"})
    ).status_code == 401
    for body in ({}, {"player_id": ""}, {"player_id": {"$ne": None}}, {"player_id": "a b"}):
        r = await client.post("/notifications/subscribe", json=body, headers=user.headers)
        assert r.status_code == 422, body


async def test_like_notification_at_most_once_per_hour(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    from paletai.notifications.repository import SubscriptionsRepository

    repo = SubscriptionsRepository(ctx.db)
    assert await repo.may_send_like("g1") is True
    assert await repo.may_send_like("g1") is False
    assert await repo.may_send_like("g2") is True
    # An hour later (simulated by moving the last send back) it may send again.
    await ctx.db["like_notifications"].update_one({"_id": "g1"}, {"$inc": {"sent_ms": -3_600_001}})
    assert await repo.may_send_like("g1") is True


async def test_admin_api_is_off_without_a_token(client: httpx.AsyncClient) -> None:
    r = await client.post("/admin/maintenance", json={"enabled": True})
    assert r.status_code == 403


async def test_maintenance_blocks_writes_not_reads(settings_with: Callable[..., Settings]) -> None:
    admin = settings_with(ADMIN_TOKEN="admin-token-" + "z" * 20)
    async with running_app(admin) as (application, client):
        ctx: AppContext = application.state.ctx
        user = await create_user(client)
        game_id = await create_game(ctx.db, user)
        auth = {"Authorization": "Bearer admin-token-" + "z" * 20}
        assert (await client.post("/admin/maintenance", json={"enabled": True})).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (
            await client.post("/admin/maintenance", json={"enabled": True}, headers=wrong)
        ).status_code == 403
        on = await client.post(
            "/admin/maintenance", json={"enabled": True, "reason": "cutover"}, headers=auth
        )
        assert on.json()["maintenance"] is True

        blocked = await client.post(f"/games/{game_id}/like", headers=user.headers)
        assert blocked.status_code == 503
        assert blocked.headers["Retry-After"]
        assert blocked.json()["error"]["code"] == "maintenance"
        assert (await client.get(f"/games/{game_id}")).status_code == 200
        assert (await client.get("/games/feed")).status_code == 200
        login = await client.post(
            "/auth/login", json={"email": user.email, "password": user.password}
        )
        assert login.status_code == 200

        off = await client.post("/admin/maintenance", json={"enabled": False}, headers=auth)
        assert off.json()["maintenance"] is False
        assert (
            await client.post(f"/games/{game_id}/like", headers=user.headers)
        ).status_code == 200


async def test_workers_take_no_new_work_in_maintenance(
    settings_with: Callable[..., Settings],
) -> None:
    admin = settings_with(ADMIN_TOKEN="admin-token-" + "m" * 20)
    async with running_app(admin) as (application, client):
        ctx: AppContext = application.state.ctx
        user = await create_user(client)
        auth = {"Authorization": "Bearer admin-token-" + "m" * 20}
        # A task queued just before the switch (as a request in flight would leave it).
        task_id = (
            await client.post("/games", json={"prompt": "snake"}, headers=user.headers)
        ).json()["task_id"]
        await wait_for_task(client, user, task_id)
        from paletai.jobs.repository import TasksRepository

        await client.post("/admin/maintenance", json={"enabled": True}, headers=auth)
        queued = await TasksRepository(ctx.db).create(
            user_id=user.id, prompt="pong", max_attempts=3
        )
        await asyncio.sleep(1.0)  # several poll intervals
        assert (await TasksRepository(ctx.db).get(queued.id)).status == "queued"  # type: ignore[union-attr]
        await client.post("/admin/maintenance", json={"enabled": False}, headers=auth)
        done = await wait_for_task(client, user, queued.id)
        assert done["status"] == "succeeded"

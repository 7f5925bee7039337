from __future__ import annotations

import asyncio

import httpx

from paletai.core.context import AppContext
from tests.conftest import create_game, create_user, create_users_directly


async def test_feed_newest_first_with_cursor_pages(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    author = await create_user(client)
    ids = [await create_game(ctx.db, author, title=f"g{i}") for i in range(7)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/games/feed", params=params)).json()
        seen += [g["id"] for g in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(ids))


async def test_feed_cursor_is_stable_when_new_games_arrive(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    ids = [await create_game(ctx.db) for _ in range(4)]
    first = (await client.get("/games/feed", params={"limit": 2})).json()
    newer = await create_game(ctx.db)
    second = (
        await client.get("/games/feed", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    assert [g["id"] for g in first["items"]] == [ids[3], ids[2]]
    assert [g["id"] for g in second["items"]] == [ids[1], ids[0]]
    assert newer not in [g["id"] for g in second["items"]]


async def test_feed_popular_orders_by_likes_then_newest(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    likes = [0, 3, 1, 3, 2, 0]
    ids = [await create_game(ctx.db, likes_count=n) for n in likes]
    expected = [ids[3], ids[1], ids[4], ids[2], ids[5], ids[0]]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"sort": "popular", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/games/feed", params=params)).json()
        seen += [g["id"] for g in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == expected


async def test_feed_rejects_bad_parameters(client: httpx.AsyncClient) -> None:
    for params in (
        {"limit": 0},
        {"limit": 51},
        {"sort": "oldest"},
        {"cursor": "!!!"},
        {"cursor": "abc"},
    ):
        r = await client.get("/games/feed", params=params)
        assert r.status_code == 422, params
        assert r.json()["error"]["message"]


async def test_like_is_idempotent_and_shows_in_the_feed(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    author = await create_user(client)
    fan = await create_user(client)
    game_id = await create_game(ctx.db, author)
    for _ in range(3):
        r = await client.post(f"/games/{game_id}/like", headers=fan.headers)
        assert r.json() == {"liked": True, "likes_count": 1}
    as_fan = (await client.get("/games/feed", headers=fan.headers)).json()["items"][0]
    assert as_fan["liked_by_me"] is True
    anonymous = (await client.get("/games/feed")).json()["items"][0]
    assert anonymous["liked_by_me"] is False
    for _ in range(2):
        r = await client.delete(f"/games/{game_id}/like", headers=fan.headers)
        assert r.json() == {"liked": False, "likes_count": 0}
    assert (await client.post(f"/games/{game_id}/like")).status_code == 401


async def test_fifty_users_like_at_once(client: httpx.AsyncClient, ctx: AppContext) -> None:
    game_id = await create_game(ctx.db)
    users = await create_users_directly(ctx, 50)
    await asyncio.gather(*(client.post(f"/games/{game_id}/like", headers=u.headers) for u in users))
    game = (await client.get(f"/games/{game_id}")).json()
    assert game["likes_count"] == 50
    assert await ctx.db["likes"].count_documents({"game_id": game_id}) == 50


async def test_one_user_likes_twenty_times_at_once(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    game_id = await create_game(ctx.db)
    user = await create_user(client)
    results = await asyncio.gather(
        *(client.post(f"/games/{game_id}/like", headers=user.headers) for _ in range(20))
    )
    assert all(r.status_code == 200 for r in results)
    assert (await client.get(f"/games/{game_id}")).json()["likes_count"] == 1


async def test_concurrent_like_and_unlike_keep_the_count_true(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    game_id = await create_game(ctx.db)
    users = await create_users_directly(ctx, 10)
    calls = []
    for u in users:
        calls += [client.post(f"/games/{game_id}/like", headers=u.headers)] * 1
        calls += [client.delete(f"/games/{game_id}/like", headers=u.headers)]
        calls += [client.post(f"/games/{game_id}/like", headers=u.headers)]
    await asyncio.gather(*calls)
    likes = await ctx.db["likes"].count_documents({"game_id": game_id})
    assert (await client.get(f"/games/{game_id}")).json()["likes_count"] == likes

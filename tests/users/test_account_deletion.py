"""DELETE /users/me: the account and everything only it owns go; every count stays true."""

from __future__ import annotations

from pathlib import Path

import httpx

from paletai.core.context import AppContext
from paletai.games.quota import PromptQuota
from tests.conftest import create_game, create_user

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


async def test_deleting_the_account_removes_everything_it_owns(
    client: httpx.AsyncClient, ctx: AppContext, data_dir: Path
) -> None:
    leaver = await create_user(client, email="leaver@example.com")
    other = await create_user(client, email="stays@example.com")
    fan = await create_user(client, email="fan@example.com")
    db = ctx.db

    # The leaver's game with a cover, liked by someone else.
    cover_url = await ctx.store.save_png("leaver-cover.png", PNG)
    own = await create_game(db, leaver, image_name="leaver-cover.png", image_url=cover_url)
    cover = data_dir / "game-images" / "leaver-cover.png"
    assert cover.exists()
    # Someone else's games, liked by the leaver (one also by a fan).
    theirs = await create_game(db, other)
    also = await create_game(db, other)
    for user, game in ((leaver, theirs), (fan, theirs), (leaver, also), (fan, own)):
        r = await client.post(f"/games/{game}/like", headers=user.headers)
        assert r.status_code == 200
    assert (await client.get(f"/games/{theirs}")).json()["likes_count"] == 2
    sub = await client.post(
        "/notifications/subscribe", json={"player_id": "device-1"}, headers=leaver.headers
    )
    assert sub.status_code == 200
    await PromptQuota(db, 20).take(leaver.id)
    # The token works (and the user is now in this process's cache).
    assert (await client.get("/auth/me", headers=leaver.headers)).status_code == 200

    response = await client.delete("/users/me", headers=leaver.headers)
    assert response.status_code == 204
    assert response.content == b""

    # The token stops working at once.
    me = await client.get("/auth/me", headers=leaver.headers)
    assert me.status_code == 401
    assert me.json()["error"]["code"] == "unauthorized"
    assert (await client.delete("/users/me", headers=leaver.headers)).status_code == 401
    # The account, its game, the game's HTML, likes and cover are gone.
    assert await db["users"].find_one({"_id": leaver.id}) is None
    assert (await client.get(f"/games/{own}")).status_code == 404
    assert await db["game_html"].find_one({"_id": own}) is None
    assert not cover.exists()
    assert await db["likes"].count_documents({"user_id": leaver.id}) == 0
    assert await db["likes"].count_documents({"game_id": own}) == 0
    # Others' games keep their other likes, with counts matching the likes collection.
    for game, expected in ((theirs, 1), (also, 0)):
        assert (await client.get(f"/games/{game}")).json()["likes_count"] == expected
        assert await db["likes"].count_documents({"game_id": game}) == expected
    assert await db["subscriptions"].count_documents({"user_id": leaver.id}) == 0
    assert await db["prompt_usage"].count_documents({"user_id": leaver.id}) == 0
    # Nobody else lost anything.
    assert (await client.get("/auth/me", headers=other.headers)).status_code == 200
    assert (await client.get("/auth/me", headers=fan.headers)).status_code == 200
    feed = (await client.get("/games/feed")).json()["items"]
    assert {g["id"] for g in feed} == {theirs, also}


async def test_a_deleted_email_can_register_again(client: httpx.AsyncClient) -> None:
    first = await create_user(client, email="again@example.com")
    assert (await client.delete("/users/me", headers=first.headers)).status_code == 204
    second = await create_user(client, email="again@example.com")
    assert second.id != first.id
    assert (await client.get("/auth/me", headers=first.headers)).status_code == 401
    assert (await client.get("/auth/me", headers=second.headers)).status_code == 200


async def test_deleting_needs_a_token(client: httpx.AsyncClient) -> None:
    response = await client.delete("/users/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"

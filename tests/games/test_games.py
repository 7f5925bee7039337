from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from paletai.config import Settings
from paletai.games.repository import GamesRepository
from tests.conftest import (
    create_game,
    create_user,
    generate_game,
    running_app,
    wait_for_task,
)


async def test_create_game_end_to_end(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    response = await client.post(
        "/games", json={"prompt": "Create a simple snake game"}, headers=user.headers
    )
    assert response.status_code == 202
    accepted = response.json()
    assert accepted["status"] == "queued"
    assert accepted["status_url"].endswith(f"/tasks/{accepted['task_id']}")

    task = await wait_for_task(client, user, accepted["task_id"])
    assert task["status"] == "succeeded", task
    assert task["stage"] == "succeeded"
    game_id = task["game_id"]

    game = (await client.get(f"/games/{game_id}")).json()
    assert game["prompt"] == "Create a simple snake game"
    assert game["author"] == {"id": user.id, "username": user.username}
    assert game["provider"] == "offline"
    assert game["likes_count"] == 0
    assert game["liked_by_me"] is False
    assert game["play_url"].endswith(f"/games/{game_id}/play")

    image = await client.get(game["image_url"])
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")

    play = await client.get(f"/games/{game_id}/play")
    assert play.status_code == 200
    assert play.headers["content-type"].startswith("text/html")
    csp = play.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    # Scripts may run, in an opaque origin, and nothing else is granted.
    assert directives["sandbox"] == "allow-scripts"
    assert "allow-same-origin" not in csp
    assert "default-src 'none'" in csp
    assert play.headers["x-content-type-options"] == "nosniff"
    assert "<canvas" in play.text.lower() or "id=" in play.text

    feed = (await client.get("/games/feed")).json()
    assert feed["items"][0]["id"] == game_id

    mine = (await client.get("/users/me/games", headers=user.headers)).json()
    assert [g["id"] for g in mine["items"]] == [game_id]


async def test_create_game_requires_auth(client: httpx.AsyncClient) -> None:
    response = await client.post("/games", json={"prompt": "snake"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_create_game_validates_prompt(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    for body in (
        {"prompt": ""},
        {"prompt": "   "},
        {"prompt": "x" * 2001},
        {"prompt": {"$ne": None}},
        {"prompt": 5},
        {},
    ):
        r = await client.post("/games", json=body, headers=user.headers)
        assert r.status_code == 422, body
    ok = await client.post("/games", json={"prompt": "x" * 2000}, headers=user.headers)
    assert ok.status_code == 202


async def test_daily_prompt_limit_is_429_with_retry_after(
    settings_with: Callable[..., Settings],
) -> None:
    limited = settings_with(DAILY_PROMPT_LIMIT=2, WORKER_MODE="external")
    async with running_app(limited) as (_, client):
        user = await create_user(client)
        codes = [
            (await client.post("/games", json={"prompt": f"game {i}"}, headers=user.headers))
            for i in range(3)
        ]
        assert [r.status_code for r in codes] == [202, 202, 429]
        assert 0 < int(codes[2].headers["Retry-After"]) <= 86400
        assert codes[2].json()["error"]["code"] == "rate_limited"
        me = (await client.get("/auth/me", headers=user.headers)).json()
        assert me["prompts_remaining_today"] == 0
        other = await create_user(client)
        r = await client.post("/games", json={"prompt": "mine"}, headers=other.headers)
        assert r.status_code == 202


async def test_concurrent_prompts_never_exceed_the_limit(
    settings_with: Callable[..., Settings],
) -> None:
    limited = settings_with(DAILY_PROMPT_LIMIT=5, WORKER_MODE="external")
    async with running_app(limited) as (_, client):
        user = await create_user(client)
        responses = await asyncio.gather(
            *(
                client.post("/games", json={"prompt": "race"}, headers=user.headers)
                for _ in range(12)
            )
        )
        codes = sorted(r.status_code for r in responses)
        assert codes.count(202) == 5
        assert codes.count(429) == 7


async def test_task_of_another_user_is_404(client: httpx.AsyncClient) -> None:
    owner = await create_user(client)
    other = await create_user(client)
    task_id = (await client.post("/games", json={"prompt": "pong"}, headers=owner.headers)).json()[
        "task_id"
    ]
    assert (await client.get(f"/tasks/{task_id}", headers=other.headers)).status_code == 404
    assert (await client.get(f"/tasks/{task_id}")).status_code == 401
    assert (await client.get("/tasks/nonsense", headers=owner.headers)).status_code == 404


async def test_unknown_and_malformed_game_ids_are_404(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    for game_id in ("0" * 24, "not-an-id", "%24ne", "a" * 64):
        for method, path in (
            ("GET", f"/games/{game_id}"),
            ("GET", f"/games/{game_id}/play"),
            ("POST", f"/games/{game_id}/like"),
            ("DELETE", f"/games/{game_id}/like"),
            ("DELETE", f"/games/{game_id}"),
        ):
            r = await client.request(method, path, headers=user.headers)
            assert r.status_code == 404, (method, path, r.text)
            assert r.json()["error"]["code"] == "not_found"


async def test_delete_game_only_by_its_author(client: httpx.AsyncClient, ctx: object) -> None:
    from paletai.core.context import AppContext

    assert isinstance(ctx, AppContext)
    author = await create_user(client)
    other = await create_user(client)
    game_id = await create_game(ctx.db, author)
    await client.post(f"/games/{game_id}/like", headers=other.headers)

    forbidden = await client.delete(f"/games/{game_id}", headers=other.headers)
    assert forbidden.status_code == 403
    assert (await client.delete(f"/games/{game_id}")).status_code == 401

    assert (await client.delete(f"/games/{game_id}", headers=author.headers)).status_code == 204
    assert (await client.get(f"/games/{game_id}")).status_code == 404
    assert (await client.get(f"/games/{game_id}/play")).status_code == 404
    assert await ctx.db["likes"].count_documents({"game_id": game_id}) == 0


async def test_delete_removes_the_cover_file(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    game_id = await generate_game(client, user, "breakout")
    image_url = (await client.get(f"/games/{game_id}")).json()["image_url"]
    assert (await client.get(image_url)).status_code == 200
    await client.delete(f"/games/{game_id}", headers=user.headers)
    assert (await client.get(image_url)).status_code == 404


async def test_delete_removes_the_card_a_screenshot_replaced(
    client: httpx.AsyncClient, ctx: object
) -> None:
    from paletai.core.context import AppContext

    assert isinstance(ctx, AppContext)
    user = await create_user(client)
    game_id = await generate_game(client, user, "breakout")
    card_url = (await client.get(f"/games/{game_id}")).json()["image_url"]
    png = (await client.get(card_url)).content
    shot_url = await ctx.store.save_png(f"{game_id}-play.png", png)
    repo = GamesRepository(ctx.db)
    assert await repo.replace_cover(game_id, f"{game_id}.png", f"{game_id}-play.png", shot_url)
    assert (await client.get(f"/games/{game_id}")).json()["image_url"].endswith(shot_url)
    assert (await client.get(card_url)).status_code == 200  # the old URL still works

    assert (await client.delete(f"/games/{game_id}", headers=user.headers)).status_code == 204
    assert (await client.get(shot_url)).status_code == 404
    assert (await client.get(card_url)).status_code == 404


async def test_remix_records_parent(client: httpx.AsyncClient, ctx: object) -> None:
    user = await create_user(client)
    parent_id = await generate_game(client, user, "a pong game")
    r = await client.post(
        f"/games/{parent_id}/remix", json={"prompt": "make it neon"}, headers=user.headers
    )
    assert r.status_code == 202
    child = await wait_for_task(client, user, r.json()["task_id"])
    assert child["status"] == "succeeded"
    game = (await client.get(f"/games/{child['game_id']}")).json()
    assert game["parent_id"] == parent_id
    assert game["id"] != parent_id


async def test_remix_of_missing_game_is_404(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    r = await client.post(
        "/games/" + "0" * 24 + "/remix", json={"prompt": "x"}, headers=user.headers
    )
    assert r.status_code == 404

"""kill -9 under like traffic: after a restart on the same database, every count is true."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import httpx
import pytest

from paletai.core.security import create_access_token
from paletai.db.client import make_client
from paletai.users.repository import UsersRepository
from tests.conftest import create_game
from tests.process_helpers import ServerProcess, clean_env

pytestmark = pytest.mark.slow

USERS = 8
GAMES = 4
LOOPS_PER_USER = 3
KILL_AFTER_CALLS = 100
SECRET = "likes-crash-secret-" + "k" * 32


async def _traffic(base: str, token: str, games: list[str], seed: int, total: list[int]) -> int:
    """Like and unlike at random until the server dies; how many calls were answered."""
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {token}"}
    answered = 0
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=5) as http:
        while True:
            url = f"/games/{rng.choice(games)}/like"
            try:
                r = await (http.post(url) if rng.random() < 0.6 else http.delete(url))
            except httpx.HTTPError:
                return answered
            assert r.status_code == 200, r.text
            answered += 1
            total[0] += 1


async def _counts(db_uri: str, db_name: str) -> dict[str, tuple[int, int, int]]:
    """Per game: (likes_count, likes in the collection, pending op markers)."""
    client = make_client(db_uri)
    try:
        db = client[db_name]
        out = {}
        async for game in db["games"].find({}, {"likes_count": 1, "likes_pending": 1}):
            likes = await db["likes"].count_documents({"game_id": game["_id"]})
            out[game["_id"]] = (game["likes_count"], likes, game.get("likes_pending", 0))
        return out
    finally:
        await client.close()


async def test_kill_9_under_like_traffic_then_restart_repairs_every_count(
    tmp_path: Path, mongo_uri: str, db_name: str
) -> None:
    env = clean_env(
        DB_PATH=mongo_uri,
        DB_NAME=db_name,
        PALETAI_DATA_DIR=str(tmp_path / "data"),
        JWT_SECRET_KEY=SECRET,
    )
    first = ServerProcess(tmp_path, env)
    second: ServerProcess | None = None
    client = make_client(mongo_uri)
    try:
        # Players and games go straight into the database while the server starts: this test
        # is about likes, not registration (a password hash per player is slow on a busy box).
        games = [await create_game(client[db_name]) for _ in range(GAMES)]
        users = UsersRepository(client[db_name])
        tokens = []
        for i in range(USERS):
            user = await users.create(f"fan{i}@example.com", f"fan{i}", "unused-hash")
            tokens.append(create_access_token(user.id, SECRET, 60)[0])
        await asyncio.to_thread(first.wait_ready, 60)
        started = time.monotonic()
        total = [0]
        traffic = [
            asyncio.create_task(_traffic(first.base_url, tokens[i % USERS], games, i, total))
            for i in range(USERS * LOOPS_PER_USER)
        ]
        for _ in range(300):  # kill once the traffic is well under way (the machine may be busy)
            if total[0] >= KILL_AFTER_CALLS:
                break
            await asyncio.sleep(0.05)
        await asyncio.to_thread(first.kill)
        answered = sum(await asyncio.gather(*traffic))
        assert answered >= KILL_AFTER_CALLS  # the kill landed mid-traffic
        after_kill = await _counts(mongo_uri, db_name)
        killed = time.monotonic()

        second = ServerProcess(tmp_path, env, "serve2.log")
        await asyncio.to_thread(second.wait_ready, 60)
        for _ in range(100):  # the start-up repair runs in the background
            repaired = await _counts(mongo_uri, db_name)
            if all(c == n and p == 0 for c, n, p in repaired.values()):
                break
            await asyncio.sleep(0.1)
        print(  # noqa: T201 - figures for the reader of -s output
            f"{answered} like calls answered in {killed - started:.1f} s before the kill; "
            f"per game (count, likes, pending) after it: {sorted(after_kill.values())}; "
            f"restart and repair took {time.monotonic() - killed:.1f} s"
        )
    finally:
        if first.proc.poll() is None:
            first.kill()
        if second is not None:
            second.terminate()
        await client.drop_database(db_name)
        await client.close()

    assert set(repaired) == set(games)
    for game_id, (count, likes, pending) in repaired.items():
        assert (count, pending) == (likes, 0), game_id

"""Likes: the cost of the crash-safe path, and of a repair.

    python bench/bench_likes.py                     # 2,000 like+unlike pairs, 2,000 games
    python bench/bench_likes.py --pairs 500 --games 500

On one embedded server (nx-27017) in a temporary directory. Prints like+unlike pairs per second
through `GamesRepository` (op marker, like, counter) against the bare two writes the old code did
(insert + `$inc`), and how long `repair_likes` takes for the marked games and for `--all`.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from paletai.db.client import Database, make_client
from paletai.db.embedded import EmbeddedMongo
from paletai.db.indexes import ensure_indexes
from paletai.games.repository import GamesRepository
from paletai.games.service import repair_likes

CONCURRENCY = 16


async def _pairs_per_second(
    pairs: int, games: list[str], pair: Callable[[str, str], Awaitable[None]]
) -> float:
    queue = list(range(pairs))

    async def caller() -> None:
        while queue:
            i = queue.pop()
            await pair(games[i % len(games)], f"u{i}")

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(CONCURRENCY)))
    return pairs / (time.perf_counter() - started)


async def _bare_pair(db: Database, game_id: str, user_id: str) -> None:
    like_id = f"{game_id}:{user_id}"
    await db.likes.insert_one({"_id": like_id, "game_id": game_id, "user_id": user_id})
    await db.games.update_one({"_id": game_id}, {"$inc": {"likes_count": 1}})
    await db.likes.delete_one({"_id": like_id})
    await db.games.update_one({"_id": game_id}, {"$inc": {"likes_count": -1}})


async def main(pairs: int, n_games: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedMongo(Path(tmp)) as server:
        client = make_client(server.uri)
        db = client["bench_likes"]
        await ensure_indexes(db)
        games = [f"g{i:06d}" for i in range(n_games)]
        await db.games.insert_many(
            [{"_id": g, "rank": i, "likes_count": 0} for i, g in enumerate(games)]
        )
        repo = GamesRepository(db)

        async def safe_pair(game_id: str, user_id: str) -> None:
            await repo.like(game_id, user_id)
            await repo.unlike(game_id, user_id)

        bare = await _pairs_per_second(pairs, games, lambda g, u: _bare_pair(db, g, u))
        safe = await _pairs_per_second(pairs, games, safe_pair)
        print(f"like+unlike, {CONCURRENCY} callers: bare insert+$inc {bare:7.0f} pairs/s")  # noqa: T201
        print(
            f"like+unlike, {CONCURRENCY} callers: crash-safe path  {safe:7.0f} pairs/s "  # noqa: T201
            f"({safe / bare:.0%} of bare)"
        )

        marked = games[: max(1, n_games // 100)]
        await db.games.update_many(
            {"_id": {"$in": marked}}, {"$inc": {"likes_pending": 1}, "$set": {"likes_count": 3}}
        )
        started = time.perf_counter()
        result = await repair_likes(db)
        seconds = time.perf_counter() - started
        print(
            f"repair likes (marked):  {result.checked} games checked, {result.fixed} fixed "  # noqa: T201
            f"in {seconds:.2f} s"
        )
        started = time.perf_counter()
        result = await repair_likes(db, all_games=True)
        seconds = time.perf_counter() - started
        print(
            f"repair likes --all:     {result.checked} games checked, {result.fixed} fixed "  # noqa: T201
            f"in {seconds:.2f} s ({result.checked / seconds:.0f} games/s)"
        )
        await client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--games", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(main(args.pairs, args.games))

"""API throughput and latency on the embedded default (issue: the service, end to end).

    python bench/bench_api.py [--games 10000] [--users 1000] [--concurrency 32] [--seconds 10]

Seeds the embedded database through the driver, serves the app as its own process (one uvicorn
worker, in-process generation workers off while the read/like load runs), and drives it with wrk
(a C load generator, so the client is not the bottleneck) at `--concurrency` connections.
Prints each endpoint's requests/s and p50/p99 with its ratio to GET /health measured in the
same run, the raw driver's find_one throughput on the same server, POST /games latency, and
offline generation time (queued to succeeded, cover included) with the in-process workers on.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import functools
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx
from pymongo import AsyncMongoClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import LoadResult, ServedApp, median, wrk  # noqa: E402
from paletai.core.security import create_access_token, hash_password  # noqa: E402
from paletai.core.timeutil import new_rank  # noqa: E402
from paletai.db.embedded import EmbeddedMongo  # noqa: E402
from paletai.db.ids import new_id  # noqa: E402
from paletai.db.indexes import ensure_indexes  # noqa: E402

SECRET = "bench-secret-" + "b" * 40
DB = "bench"


async def seed(uri: str, n_games: int, n_users: int) -> tuple[list[str], list[str]]:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(uri)
    db = client[DB]
    await ensure_indexes(db)
    password_hash = hash_password("bench password")
    now = dt.datetime.now(dt.UTC)
    users = [
        {
            "_id": new_id(),
            "email": f"user{i}@bench.example",
            "username": f"user{i}",
            "password_hash": password_hash,
            "created_at": now,
        }
        for i in range(n_users)
    ]
    await db.users.insert_many(users)
    games = []
    html = "<!doctype html><canvas id=c></canvas><script>/* game */</script>" + "x" * 2000
    for i in range(n_games):
        author = users[i % n_users]
        games.append(
            {
                "_id": new_id(),
                "title": f"Bench game {i}",
                "description": "A game made for the benchmark. " * 4,
                "controls": "arrows",
                "prompt": f"make game number {i}",
                "author_id": author["_id"],
                "author_username": author["username"],
                "image_name": None,
                "image_url": None,
                "likes_count": random.randint(0, 40),
                "provider": "offline",
                "model": "templates-v1",
                "usage": {},
                "parent_id": None,
                "task_id": None,
                "html_size": len(html),
                "rank": new_rank(now - dt.timedelta(seconds=n_games - i)),
                "created_at": now,
            }
        )
    for start in range(0, n_games, 1000):
        batch = games[start : start + 1000]
        await db.games.insert_many(batch)
        await db.game_html.insert_many([{"_id": g["_id"], "html": html} for g in batch])
    await client.close()
    return [str(u["_id"]) for u in users], [str(g["_id"]) for g in games]


async def driver_find_one(uri: str, ids: list[str], concurrency: int, total: int) -> LoadResult:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(uri)
    games = client[DB].games
    latencies: list[float] = []
    it = iter(range(total))

    async def caller() -> None:
        for i in it:
            t = time.perf_counter()
            await games.find_one({"_id": ids[i % len(ids)]})
            latencies.append((time.perf_counter() - t) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    result = LoadResult("driver find_one (raw)", total, 0, time.perf_counter() - started, latencies)
    await client.close()
    return result


def lua_rotating(method: str, paths: list[str], tokens: list[str], body: str = "") -> str:
    """A wrk script that walks `paths` and `tokens` in turn, one request each."""
    quoted_paths = ",".join(json.dumps(p) for p in paths)
    quoted_tokens = ",".join(json.dumps(t) for t in tokens)
    return f"""
local paths = {{{quoted_paths}}}
local tokens = {{{quoted_tokens}}}
local i = 0
request = function()
  i = i + 1
  local headers = {{["Content-Type"] = "application/json"}}
  if #tokens > 0 then headers["Authorization"] = "Bearer " .. tokens[(i % #tokens) + 1] end
  return wrk.format({json.dumps(method)}, paths[(i % #paths) + 1], headers, {json.dumps(body)})
end
"""


def http_load(
    url: str, users: list[str], games: list[str], connections: int, seconds: int, workdir: Path
) -> tuple[list[LoadResult], list[LoadResult]]:
    tokens = [create_access_token(u, SECRET, 60)[0] for u in users]
    run = functools.partial(wrk, connections=connections, seconds=seconds, workdir=workdir)
    run("warm-up", f"{url}/health", seconds=2, connections=connections, workdir=workdir)
    reads = [
        run("GET /health", f"{url}/health"),
        run("GET /games/feed?limit=20", f"{url}/games/feed?limit=20"),
        run("GET /games/feed?sort=popular", f"{url}/games/feed?limit=20&sort=popular"),
        run(
            "GET /games/{id}",
            url,
            script=lua_rotating("GET", [f"/games/{g}" for g in games[:5000]], []),
        ),
        run(
            "POST /games/{id}/like",
            url,
            script=lua_rotating("POST", [f"/games/{g}/like" for g in games[:5000]], tokens),
        ),
    ]
    body = json.dumps({"prompt": "Create a simple snake game"})
    creates = [
        wrk(
            f"POST /games ({c} conns)",
            url,
            connections=c,
            seconds=seconds,
            workdir=workdir,
            script=lua_rotating("POST", ["/games"], tokens, body),
        )
        for c in (8, connections)
    ]
    return reads, creates


async def clear_queue(uri: str) -> None:
    """Drop the tasks the POST /games load queued, so generation is timed on an empty queue."""
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(uri)
    await client[DB].tasks.delete_many({})
    await client.close()


async def generation_times(url: str, uri: str, users: list[str], n: int) -> list[float]:
    """Queue `n` games a few at a time; queued -> succeeded per task from the task's own times."""
    tokens = [create_access_token(u, SECRET, 60)[0] for u in users]
    task_ids = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for i in range(n):
            r = await http.post(
                "/games",
                json={"prompt": random.choice(["snake", "pong", "breakout", "space shooter"])},
                headers={"Authorization": f"Bearer {tokens[i % len(tokens)]}"},
            )
            task_ids.append(r.json()["task_id"])
            await asyncio.sleep(0.25)  # a steady trickle, not a burst
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(uri, tz_aware=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = await client[DB].tasks.count_documents(
            {"_id": {"$in": task_ids}, "status": {"$in": ["succeeded", "failed"]}}
        )
        if done == len(task_ids):
            break
        await asyncio.sleep(0.2)
    docs = await client[DB].tasks.find({"_id": {"$in": task_ids}}).to_list()
    await client.close()
    failed = [d for d in docs if d["status"] != "succeeded"]
    if failed:
        print(f"  {len(failed)} generation task(s) did not succeed", file=sys.stderr)
    return [
        (d["finished_at"] - d["created_at"]).total_seconds() * 1000
        for d in docs
        if d["status"] == "succeeded"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--games", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10, help="wrk run per endpoint")
    parser.add_argument("--generations", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, EmbeddedMongo(Path(tmp) / "db") as mongo:
        t = time.perf_counter()
        users, games = asyncio.run(seed(mongo.uri, args.games, args.users))
        print(f"seeded {len(games)} games, {len(users)} users in {time.perf_counter() - t:.1f} s")
        env = {
            "DB_PATH": mongo.uri,
            "DB_NAME": DB,
            "PALETAI_DATA_DIR": str(Path(tmp) / "data"),
            "JWT_SECRET_KEY": SECRET,
            "AI_PROVIDER": "offline",
            "DAILY_PROMPT_LIMIT": "100000",
            "WORKER_MODE": "external",
        }
        app = ServedApp(Path(tmp), env)
        try:
            results, creates = http_load(
                app.url, users, games, args.concurrency, args.seconds, Path(tmp)
            )
        finally:
            app.stop()
        raw = asyncio.run(driver_find_one(mongo.uri, games, args.concurrency, 20_000))
        asyncio.run(clear_queue(mongo.uri))

        env["WORKER_MODE"] = "inprocess"
        app = ServedApp(Path(tmp), env)
        try:
            gen_ms = asyncio.run(generation_times(app.url, mongo.uri, users, args.generations))
        finally:
            app.stop()

    health = results[0]
    print(f"\nwrk, {args.concurrency} connections, {args.seconds} s each:")
    for result in results:
        print(result.line(health))
    print(raw.line(health) + f"  ({args.concurrency} tasks, pymongo async)")
    for create in creates:
        print(create.line())
    print(
        f"offline generation, queued -> succeeded (cover included): median "
        f"{median(gen_ms):.0f} ms, max {max(gen_ms, default=float('nan')):.0f} ms "
        f"over {len(gen_ms)} games"
    )
    feed = results[1]
    print("\ngoals:")
    share = feed.rps / health.rps
    print(f"  feed >= 25% of /health: {share:.0%}  p99 < 250 ms: {feed.pct(99):.0f} ms")
    for create in creates:
        print(f"  {create.name} p99 < 50 ms: {create.pct(99):.1f} ms")
    print(f"  generation median < 1 s: {median(gen_ms):.0f} ms")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        figures = {
            r.name: {"rps": r.rps, "p50_ms": r.pct(50), "p99_ms": r.pct(99), "errors": r.errors}
            for r in [*results, raw, *creates]
        }
        figures["generation_ms"] = {"median": median(gen_ms), "n": len(gen_ms)}
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

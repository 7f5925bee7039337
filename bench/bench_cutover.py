"""Scale benchmark of `paletai db cutover` and `db sync`: the write pause and the sync lag at
100,000 and 1,000,000 documents of ~2 KB.

    python bench/bench_cutover.py --docs 100000                 # builds the data set once
    python bench/bench_cutover.py --docs 1000000 --data-dir /tmp/paletai-bench

The data set (source and synced target, one embedded nx-27017 server each) is built once under
`--data-dir/<docs>/` and reused by later runs: loading 1,000,000 documents into the stand-in takes
many minutes. A run then:

1. (`--seed-only`, once) loads the source and syncs the target up to date;
2. measures the sync lag (write on the source -> applied on the target, end to end) under
   `--rate` writes/s for `--lag-seconds` (goal: p99 < 1 s);
3. runs a cutover (its sync resumes from the checkpoints; a resumed sync compares the contents
   once, a full scan of both sides, before it has caught up) while a writer updates the source
   at `--rate`/s until the stop command lands, and prints the write pause next to its baseline
   measured in the same run: the full verify the pause used to contain (the pre-pause verify is
   that same full comparison).

Two servers and this process share the machine (see the load average printed), so figures are
the stand-in's; the goals are < 1 s pause at 1,000,000 documents, growing < 2x from 100,000.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

from bson import ObjectId
from bson.raw_bson import RawBSONDocument

from paletai.db.client import make_client
from paletai.db.embedded import EmbeddedMongo, free_port
from paletai.ops.db.cutover import CommandSwitch, cutover
from paletai.ops.db.sync import SyncOptions, syncing

DB = "bench"


# The stand-in is single-threaded: while it serves a 1,000,000-document scan it cannot answer the
# driver's heartbeat within the kit's default 5 s, and server selection then fails. A timeout in the
# URI wins over the kit's default (ops/db/common.py connect), as it would for an operator.
SERVER_TIMEOUT_MS = 300_000


def with_db(uri: str, name: str) -> str:
    base, _, query = uri.partition("/?")
    return f"{base}/{name}?{query}&serverSelectionTimeoutMS={SERVER_TIMEOUT_MS}"


def game(i: int, size: int, rng: random.Random) -> dict[str, Any]:
    body = base64.b64encode(rng.randbytes(size * 3 // 4)).decode()
    return {
        "_id": ObjectId(),
        "title": f"Game {i}",
        "description": "A small arcade game generated from a prompt.",
        "prompt": f"Create a simple snake game number {i}",
        "author": {"id": str(ObjectId()), "username": f"user{i % 500}"},
        "html": body,
        "likes_count": i % 97,
        "provider": "offline",
        "model": "templates-v1",
        "created_at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=i),
    }


def ports(home: Path) -> tuple[int, int]:
    """The servers' ports, the same on every run: the sync's checkpoints name the source by
    host:port, so a source on another port would be another source."""
    saved = home / "ports.json"
    if saved.exists():
        src, dst = json.loads(saved.read_text())
        return int(src), int(dst)
    logs = sorted((home / "src" / "run").glob("nx-27017-*.log"), key=lambda p: p.stat().st_mtime)
    src = int(logs[0].stem.rsplit("-", 1)[1]) if logs else free_port()
    dst = free_port()
    while dst == src:
        dst = free_port()
    saved.write_text(json.dumps([src, dst]))
    return src, dst


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


async def seed(uri: str, docs: int, size: int, marker: Path) -> None:
    """Load `docs` games (and 500 users) into the source, once."""
    if await asyncio.to_thread(marker.exists):
        print(f"data set: reusing {docs} documents ({marker.parent})", flush=True)
        return
    client = make_client(uri)
    rng = random.Random(1)
    games = client[DB].games
    have = await games.estimated_document_count()
    print(f"data set: loading {docs - have} documents of ~2 KB ({load()}) ...", flush=True)
    started = time.perf_counter()
    batch: list[dict[str, Any]] = []
    for i in range(have, docs):
        batch.append(game(i, size, rng))
        if len(batch) == 5000:
            await games.insert_many(batch, ordered=False)
            batch = []
            if (i + 1) % 100_000 == 0:
                print(f"  {i + 1} ({time.perf_counter() - started:.0f} s)", flush=True)
    if batch:
        await games.insert_many(batch, ordered=False)
    if not await client[DB].users.estimated_document_count():
        await client[DB].users.insert_many([{"_id": f"user-{i}", "n": i} for i in range(500)])
    await client.close()
    print(f"  loaded in {time.perf_counter() - started:.0f} s", flush=True)
    await asyncio.to_thread(marker.write_text, json.dumps({"docs": docs, "size": size}))


async def catch_up(src_uri: str, dst_uri: str) -> None:
    started = time.perf_counter()
    async with syncing(with_db(src_uri, DB), with_db(dst_uri, DB), options=SyncOptions()) as e:
        await e.drain(7200)
    print(f"target synced in {time.perf_counter() - started:.0f} s ({load()})", flush=True)


async def bench_lag(src_uri: str, dst_uri: str, seconds: float, per_s: float) -> None:
    rng = random.Random(2)
    client = make_client(src_uri)
    games = client[DB].games
    ids = [d["_id"] async for d in games.find({}, {"_id": 1}).limit(20_000)]
    written: dict[int, float] = {}
    lags: list[float] = []

    def observer(_coll: str, docs: list[RawBSONDocument], applied_at: float) -> None:
        for doc in docs:
            seq = doc.get("seq")
            if isinstance(seq, int) and seq in written:
                lags.append(applied_at - written.pop(seq))

    options = SyncOptions(observer=observer)  # the command's defaults: reconciles every 30 s
    async with syncing(with_db(src_uri, DB), with_db(dst_uri, DB), options=options) as engine:
        await engine.drain(3600)
        print(f"\nsync lag under {per_s:.0f} writes/s for {seconds:.0f} s ({load()})", flush=True)
        seq = 0
        stop_at = time.monotonic() + seconds
        next_at = time.monotonic()
        while time.monotonic() < stop_at:
            seq += 1
            written[seq] = time.monotonic()
            if seq % 4 == 0:
                doc = game(seq, 1500, rng) | {"seq": seq}
                await games.insert_one(doc)
                ids.append(doc["_id"])
            else:
                change = {"$set": {"seq": seq}, "$inc": {"n": 1}}
                await games.update_one({"_id": rng.choice(ids)}, change)
            next_at += 1 / per_s
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await engine.drain(600)
        reconciles = sum(s.reconciles for s in engine.statuses)
    await client.close()
    print(
        f"  writes: {seq} ({seq / seconds:.0f}/s), {len(lags)} lag samples, {reconciles} reconciles"
    )
    print(
        f"  lag p50 {percentile(lags, 50) * 1000:.0f} ms, p99 {percentile(lags, 99) * 1000:.0f} ms,"
        f" max {max(lags) * 1000:.0f} ms, mean {statistics.fmean(lags) * 1000:.0f} ms"
        "  (goal p99 < 1 s)",
        flush=True,
    )


async def bench_cutover(src_uri: str, dst_uri: str, per_s: float, tmp: Path) -> None:
    rng = random.Random(3)
    client = make_client(
        src_uri, serverSelectionTimeoutMS=SERVER_TIMEOUT_MS, connectTimeoutMS=SERVER_TIMEOUT_MS
    )
    games = client[DB].games
    ids = [d["_id"] async for d in games.find({}, {"_id": 1}).limit(20_000)]
    flag = tmp / "writes-stopped"
    flag.unlink(missing_ok=True)
    stop_writer = asyncio.Event()
    writes = 0

    async def writer() -> None:
        nonlocal writes
        while not stop_writer.is_set():
            if not flag.exists():
                await games.update_one({"_id": rng.choice(ids)}, {"$inc": {"n": 1}})
                writes += 1
            await asyncio.sleep(1 / per_s)

    task = asyncio.create_task(writer())
    print(f"\ncutover, writer at {per_s:.0f}/s until the stop command lands ({load()})", flush=True)
    started = time.perf_counter()
    report, _ = await cutover(
        with_db(src_uri, DB),
        with_db(dst_uri, DB),
        CommandSwitch(f"touch {flag}"),
        options=SyncOptions(),
        catch_up_timeout=7200,  # a resumed sync compares 1,000,000 documents first
    )
    total = time.perf_counter() - started
    stop_writer.set()
    await task
    await client.close()
    flag.unlink(missing_ok=True)
    docs = sum(c["source"] for c in report.collections)
    print(f"  {docs} documents, {writes} writes during the command, identical: {report.identical}")
    print(
        f"  write pause {report.write_pause_seconds:.3f} s = stop {report.stop_call_seconds:.3f}"
        f" + drain {report.drain_seconds:.3f} + in-pause check {report.verify_seconds:.3f} s"
        f" ({report.ids_rechecked} _ids re-checked, counts {report.count_seconds:.3f} s)"
    )
    baseline = report.pre_verify_seconds
    print(
        f"  baseline, same run: the full verify (what the pause used to contain) "
        f"{baseline:.2f} s; pause / full verify = {report.write_pause_seconds / baseline:.3f}"
    )
    print(f"  whole command {total:.1f} s ({load()})", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--doc-size", type=int, default=1700, help="html field size (~2 KB doc)")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/paletai-bench"))
    parser.add_argument("--lag-seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seed-only", action="store_true", help="Build the data set and stop.")
    parser.add_argument("--skip-lag", action="store_true")
    args = parser.parse_args()
    home = args.data_dir / str(args.docs)
    home.mkdir(parents=True, exist_ok=True)
    print(f"bench_cutover: {args.docs} documents in {home} ({load()})", flush=True)
    src_port, dst_port = ports(home)
    with (
        EmbeddedMongo(home / "src", port=src_port) as source,
        EmbeddedMongo(home / "dst", port=dst_port) as target,
    ):
        await seed(source.uri, args.docs, args.doc_size, home / "seeded.json")
        if args.seed_only:
            await catch_up(source.uri, target.uri)
            return
        if not args.skip_lag:
            await bench_lag(source.uri, target.uri, args.lag_seconds, args.rate)
        await bench_cutover(source.uri, target.uri, args.rate, home)


if __name__ == "__main__":
    asyncio.run(main())

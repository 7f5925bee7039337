"""Benchmarks of `paletai db`: backup/restore against the raw driver, sync lag, cutover pause.

    python bench/bench_dbops.py                      # 100,000 docs of ~2 KB, 30 s of writes
    python bench/bench_dbops.py --docs 20000 --lag-seconds 10

Two embedded servers (nx-27017) in a temporary directory; both and this process share the
machine, so absolute figures are the stand-in's, and the ratios are what the goals are about:
backup vs a plain `find()` scan, restore vs `insert_many` of the same documents (goal >= 0.8),
sync lag p50/p99 under 200 writes/s (goal p99 < 1 s), cutover write pause (goal < 5 s).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import bson
from bson import ObjectId
from bson.raw_bson import RawBSONDocument

from paletai.db.client import make_client
from paletai.db.embedded import EmbeddedMongo
from paletai.ops.db.backup import backup
from paletai.ops.db.cutover import CommandSwitch, cutover
from paletai.ops.db.namespaces import NamespaceMapper
from paletai.ops.db.restore import restore
from paletai.ops.db.sync import SyncOptions, syncing


def with_db(uri: str, name: str) -> str:
    base, _, query = uri.partition("/?")
    return f"{base}/{name}?{query}"


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


def rate(n: float, seconds: float) -> float:
    return n / seconds if seconds else float("inf")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


async def bench_backup_restore(src_uri: str, dst_uri: str, docs: int, size: int, tmp: Path) -> None:
    rng = random.Random(1)
    src = make_client(src_uri)
    dst = make_client(dst_uri)
    print(f"seeding {docs} documents of ~{size} B ...", flush=True)
    started = time.perf_counter()
    batch: list[dict[str, Any]] = []
    all_docs: list[dict[str, Any]] = []
    for i in range(docs):
        batch.append(game(i, size, rng))
        if len(batch) == 5000:
            await src.bench.games.insert_many(batch)
            all_docs.extend(batch)
            batch = []
    if batch:
        await src.bench.games.insert_many(batch)
        all_docs.extend(batch)
    total_bytes = sum(len(bson.encode(d)) for d in all_docs)
    print(f"  seeded in {time.perf_counter() - started:.1f} s ({total_bytes / 1e6:.0f} MB)")

    # Raw driver scan: a plain find() decoding to dicts, as an application would.
    started = time.perf_counter()
    scanned = 0
    async for _ in src.bench.games.find({}, batch_size=1000):
        scanned += 1
    raw_scan = time.perf_counter() - started

    started = time.perf_counter()
    result = await backup(with_db(src_uri, "bench"), tmp / "dump")
    dump_time = time.perf_counter() - started
    assert result.documents == docs == scanned

    # Raw driver insert_many of the same documents (dicts, encoded by the driver).
    started = time.perf_counter()
    await dst.raw_insert.games.insert_many(all_docs, ordered=False)
    raw_insert = time.perf_counter() - started

    started = time.perf_counter()
    restored = await restore(
        dst_uri,
        tmp / "dump",
        mapper=NamespaceMapper(ns_from=["bench.*"], ns_to=["restored.*"]),
    )
    restore_time = time.perf_counter() - started
    assert restored.total("inserted") == docs

    mb = total_bytes / 1e6
    print(f"\nbackup/restore, {docs} docs, {mb:.0f} MB")
    print(f"  {'':<26}{'docs/s':>10}{'MB/s':>9}{'seconds':>9}")
    for label, seconds in (
        ("driver find() scan", raw_scan),
        ("paletai db backup", dump_time),
        ("driver insert_many", raw_insert),
        ("paletai db restore", restore_time),
    ):
        print(f"  {label:<26}{rate(docs, seconds):>10.0f}{rate(mb, seconds):>9.1f}{seconds:>9.2f}")
    print(f"  backup / scan ratio:     {raw_scan / dump_time:.2f}  (goal >= 0.8)")
    print(f"  restore / insert ratio:  {raw_insert / restore_time:.2f}  (goal >= 0.8)")
    await src.close()
    await dst.close()


async def bench_sync_and_cutover(
    src_uri: str, dst_uri: str, seconds: float, writes_per_s: float, tmp: Path
) -> None:
    rng = random.Random(2)
    src = make_client(src_uri)
    db = src.lagbench
    ids = [ObjectId() for _ in range(5000)]
    await db.games.insert_many([game(i, 1500, rng) | {"_id": ids[i]} for i in range(len(ids))])
    written: dict[int, float] = {}
    lags: list[float] = []

    def observer(_coll: str, docs: list[RawBSONDocument], applied_at: float) -> None:
        for doc in docs:
            seq = doc.get("seq")
            if isinstance(seq, int) and seq in written:
                lags.append(applied_at - written.pop(seq))

    async with syncing(
        with_db(src_uri, "lagbench"),
        with_db(dst_uri, "lagbench"),
        options=SyncOptions(reconcile_interval=10.0, observer=observer),
    ) as engine:
        await engine.drain(300)
        print(f"\nsync lag under {writes_per_s:.0f} writes/s for {seconds:.0f} s", flush=True)
        seq = 0
        interval = 1 / writes_per_s
        stop_at = time.monotonic() + seconds
        next_at = time.monotonic()
        while time.monotonic() < stop_at:
            seq += 1
            target = rng.choice(ids)
            written[seq] = time.monotonic()
            if seq % 4 == 0:
                new_id = ObjectId()
                await db.games.insert_one(game(seq, 1500, rng) | {"_id": new_id, "seq": seq})
                ids.append(new_id)
            else:
                await db.games.update_one({"_id": target}, {"$set": {"seq": seq}, "$inc": {"n": 1}})
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await engine.drain(120, strict=True)
    achieved = seq / seconds
    print(f"  writes: {seq} ({achieved:.0f}/s), lag samples: {len(lags)}")
    print(
        f"  lag p50 {percentile(lags, 50) * 1000:.0f} ms, p99 {percentile(lags, 99) * 1000:.0f} ms,"
        f" max {max(lags) * 1000:.0f} ms, mean {statistics.fmean(lags) * 1000:.0f} ms"
        "  (goal p99 < 1 s)"
    )

    await bench_cutover(src_uri, dst_uri, "lagbench", "lagbench", writes_per_s, tmp)
    await src.close()


async def bench_cutover(
    src_uri: str, dst_uri: str, src_db: str, dst_db: str, writes_per_s: float, tmp: Path
) -> None:
    """Cutover while a writer runs until the stop command lands (a flag file it watches)."""
    rng = random.Random(3)
    client = make_client(src_uri)
    coll = client[src_db].games
    ids = [d["_id"] async for d in coll.find({}, {"_id": 1}).limit(5000)]
    flag = tmp / f"writes-stopped-{dst_db}"
    stop_writer = asyncio.Event()

    async def writer() -> None:
        while not stop_writer.is_set():
            if not flag.exists():
                await coll.update_one({"_id": rng.choice(ids)}, {"$inc": {"n": 1}})
            await asyncio.sleep(1 / writes_per_s)

    task = asyncio.create_task(writer())
    started = time.perf_counter()
    report, _ = await cutover(
        with_db(src_uri, src_db),
        with_db(dst_uri, dst_db),
        CommandSwitch(f"touch {flag}"),
        options=SyncOptions(reconcile_interval=10.0),
    )
    total = time.perf_counter() - started
    stop_writer.set()
    await task
    docs = sum(c["source"] for c in report.collections)
    print(f"\ncutover {src_db} ({docs} documents, writer at {writes_per_s:.0f}/s until stopped)")
    print(
        f"  write pause {report.write_pause_seconds:.2f} s = stop {report.stop_call_seconds:.2f}"
        f" + drain {report.drain_seconds:.2f} + verify {report.verify_seconds:.2f} s"
        f"  (identical: {report.identical}; goal < 5 s); whole command {total:.1f} s"
    )
    await client.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--doc-size", type=int, default=1700, help="html field size (~2 KB doc)")
    parser.add_argument("--lag-seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--skip-backup", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-dbops-") as tmp_name:
        tmp = Path(tmp_name)
        with EmbeddedMongo(tmp / "src") as source, EmbeddedMongo(tmp / "dst") as target:
            if not args.skip_backup:
                await bench_backup_restore(source.uri, target.uri, args.docs, args.doc_size, tmp)
            await bench_sync_and_cutover(source.uri, target.uri, args.lag_seconds, args.rate, tmp)
            if not args.skip_backup:
                # Free the page cache of what the cutover does not touch.
                cleanup = make_client(target.uri)
                for name in ("raw_insert", "restored", "lagbench"):
                    await cleanup.drop_database(name)
                await cleanup.close()
                await bench_cutover(
                    source.uri, target.uri, "bench", "bench_cutover", args.rate, tmp
                )


if __name__ == "__main__":
    asyncio.run(main())

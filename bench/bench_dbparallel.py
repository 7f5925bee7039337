"""`paletai db backup/restore` serial vs `--parallel 4`, each against the raw driver.

    python bench/bench_dbparallel.py                          # 100,000 docs of ~2 KB, 4 collections
    python bench/bench_dbparallel.py --docs 20000 --collections 8

Two embedded servers (nx-27017) in a temporary directory, the client on the same machine. The
documents are split evenly over `--collections` collections. Four figures each way, in one run:
the driver one collection after another (`find()` decoding to dicts / `insert_many` of dicts),
`paletai db backup|restore --parallel 1`, the driver over all collections at once (one task
each), and `--parallel 4`. Ratios compare like with like (serial to serial, concurrent to
concurrent); the parallel speed-up is ours at 4 over ours at 1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import bson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_dbops import game, rate, with_db  # noqa: E402
from paletai.db.client import Client, make_client  # noqa: E402
from paletai.db.embedded import EmbeddedMongo  # noqa: E402
from paletai.ops.db.backup import backup  # noqa: E402
from paletai.ops.db.namespaces import NamespaceMapper  # noqa: E402
from paletai.ops.db.restore import restore  # noqa: E402
from paletai.ops.db.verify import verify  # noqa: E402


async def timed(step: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await step()
    seconds = time.perf_counter() - started
    print(f"  step done in {seconds:.1f} s (load average {os.getloadavg()[0]:.1f})", flush=True)
    return seconds


async def bench(docs: int, size: int, collections: int, parallel: int, tmp: Path) -> None:
    with (
        EmbeddedMongo(tmp / "src") as src_server,
        EmbeddedMongo(tmp / "dst") as dst_server,
    ):
        # The stand-in answers the driver's heartbeat on the thread that runs the inserts: on a
        # loaded machine a 48 MB insert_many outlasts the default 5 s and the driver drops the
        # pool ("operation cancelled"). The same allowance for the driver and the kit.
        # At 1,000,000 documents a scan keeps it from answering server selection for longer
        # than the kit's 5 s as well; a timeout in the URI wins over the kit's default.
        timeouts = "&connectTimeoutMS=60000&serverSelectionTimeoutMS=300000"
        src_uri = src_server.uri + timeouts
        dst_uri = dst_server.uri + timeouts
        src, dst = make_client(src_uri), make_client(dst_uri)
        try:
            await _run(src, dst, src_uri, dst_uri, docs, size, collections, parallel, tmp)
        finally:
            await src.close()
            await dst.close()


async def _run(
    src: Client,
    dst: Client,
    src_uri: str,
    dst_uri: str,
    docs: int,
    size: int,
    collections: int,
    parallel: int,
    tmp: Path,
) -> None:
    rng = random.Random(1)
    names = [f"c{k}" for k in range(collections)]
    per: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for i in range(docs):
        per[names[i % collections]].append(game(i, size, rng))
    total_bytes = sum(len(bson.encode(d)) for coll in per.values() for d in coll)
    mb = total_bytes / 1e6
    print(f"seeding {docs} documents of ~{size} B in {collections} collections ...", flush=True)
    started = time.perf_counter()
    for name, items in per.items():
        for at in range(0, len(items), 5000):
            await src.bench[name].insert_many(items[at : at + 5000])
    print(f"  seeded in {time.perf_counter() - started:.1f} s ({mb:.0f} MB)", flush=True)

    async def scan(name: str) -> int:
        return sum([1 async for _ in src.bench[name].find({}, batch_size=1000)])

    async def scan_serial() -> None:
        for name in names:
            await scan(name)

    async def scan_concurrent() -> None:
        await asyncio.gather(*(scan(name) for name in names))

    async def insert(db: str, name: str) -> None:
        await dst[db][name].insert_many(per[name], ordered=False)

    async def insert_serial() -> None:
        for name in names:
            await insert("raw_serial", name)

    async def insert_concurrent() -> None:
        await asyncio.gather(*(insert("raw_concurrent", name) for name in names))

    source = with_db(src_uri, "bench")
    figures: dict[str, float] = {}
    figures["driver find(), one collection at a time"] = await timed(scan_serial)
    figures["paletai db backup --parallel 1"] = await timed(
        lambda: backup(source, tmp / "dump1", parallel=1)
    )
    figures["driver find(), all collections at once"] = await timed(scan_concurrent)
    figures[f"paletai db backup --parallel {parallel}"] = await timed(
        lambda: backup(source, tmp / "dumpN", parallel=parallel)
    )
    for name in names:  # both dumps hold the same bytes
        one = (tmp / "dump1" / "bench" / f"{name}.bson").read_bytes()
        assert one == (tmp / "dumpN" / "bench" / f"{name}.bson").read_bytes(), name
    shutil.rmtree(tmp / "dumpN")

    def to(db: str) -> NamespaceMapper:
        return NamespaceMapper(ns_from=["bench.*"], ns_to=[f"{db}.*"])

    figures["driver insert_many, one collection at a time"] = await timed(insert_serial)
    await dst.drop_database("raw_serial")
    figures["paletai db restore --parallel 1"] = await timed(
        lambda: restore(dst_uri, tmp / "dump1", mapper=to("restored1"), parallel=1)
    )
    figures["driver insert_many, all collections at once"] = await timed(insert_concurrent)
    await dst.drop_database("raw_concurrent")
    figures[f"paletai db restore --parallel {parallel}"] = await timed(
        lambda: restore(dst_uri, tmp / "dump1", mapper=to("restoredN"), parallel=parallel)
    )
    print(f"\nbackup/restore, {docs} docs in {collections} collections, {mb:.0f} MB, 1 run")
    print(f"  {'':<46}{'docs/s':>9}{'MB/s':>8}{'seconds':>9}")
    for label, seconds in figures.items():
        print(f"  {label:<46}{rate(docs, seconds):>9.0f}{rate(mb, seconds):>8.1f}{seconds:>9.2f}")
    p = parallel

    def ratio(baseline: str, ours: str) -> str:
        return f"{figures[baseline] / figures[ours]:.2f}"

    print("ratios (goal >= 0.8 against the driver):")
    rows = (
        (
            "backup  serial / driver serial",
            "driver find(), one collection at a time",
            "paletai db backup --parallel 1",
        ),
        (
            f"backup  --parallel {p} / driver concurrent",
            "driver find(), all collections at once",
            f"paletai db backup --parallel {p}",
        ),
        (
            "restore serial / driver serial",
            "driver insert_many, one collection at a time",
            "paletai db restore --parallel 1",
        ),
        (
            f"restore --parallel {p} / driver concurrent",
            "driver insert_many, all collections at once",
            f"paletai db restore --parallel {p}",
        ),
        (
            f"backup  --parallel {p} / --parallel 1 (speed-up)",
            "paletai db backup --parallel 1",
            f"paletai db backup --parallel {p}",
        ),
        (
            f"restore --parallel {p} / --parallel 1 (speed-up)",
            "paletai db restore --parallel 1",
            f"paletai db restore --parallel {p}",
        ),
    )
    for label, baseline, ours in rows:
        print(f"  {label:<48}{ratio(baseline, ours):>6}")
    print(f"  (machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end)")
    # After the figures, so a long check cannot lose them.
    report = await verify(source, dst_uri, target_db_name="restoredN")
    assert report.identical, "the parallel restore differs from the source"
    print("  the --parallel restore is identical to the source (db verify)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=2000, help="bytes of payload per document")
    parser.add_argument("--collections", type=int, default=4)
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-dbparallel-") as tmp:
        asyncio.run(bench(args.docs, args.size, args.collections, args.parallel, Path(tmp)))


if __name__ == "__main__":
    main()

"""`paletai db backup/restore --archive` and `backup --consistent`, against the directory dump.

    python bench/bench_dbarchive.py                    # 100,000 docs of ~2 KB
    python bench/bench_dbarchive.py --docs 20000 --rate 200

Two embedded servers (nx-27017) in a temporary directory, the client on the same machine, one
`games` collection. In one run: backup to a directory, to an archive (in memory), and to a
directory with `--consistent` (idle, then under a writer at `--rate` updates/s, whose changes are
recorded and replayed); restore of the directory dump and of the archive. Ratios compare with the
directory backup/restore of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pymongo import MongoClient  # noqa: E402

from bench.bench_dbops import game, rate, with_db  # noqa: E402
from paletai.db.client import make_client  # noqa: E402
from paletai.db.embedded import EmbeddedMongo  # noqa: E402
from paletai.ops.db.archive_io import backup_to_archive, restore_from_archive  # noqa: E402
from paletai.ops.db.backup import backup  # noqa: E402
from paletai.ops.db.restore import restore  # noqa: E402


async def bench(src: str, dst: str, docs: int, size: int, writes: float, tmp: Path) -> None:
    source = make_client(src)
    target = make_client(dst)
    rng = random.Random(5)
    batch = 5000
    for start in range(0, docs, batch):
        chunk = [game(i, size, rng) for i in range(start, min(docs, start + batch))]
        await source.bench.games.insert_many(chunk)
    ids = [d["_id"] async for d in source.bench.games.find({}, {"_id": 1})]
    src_db, dst_db = with_db(src, "bench"), with_db(dst, "bench")

    async def timed_backup(**kw: object) -> float:
        started = time.perf_counter()
        await backup(src_db, tmp / f"d{time.monotonic_ns()}", **kw)  # type: ignore[arg-type]
        return time.perf_counter() - started

    await timed_backup()  # warm-up: the first scan pays for the server's cold cache
    directory = await timed_backup()
    buffer = io.BytesIO()
    started = time.perf_counter()
    await backup_to_archive(src_db, buffer)
    archive = time.perf_counter() - started
    consistent = await timed_backup(consistent=True)

    # The writer is another client in its own thread, as the live service would be.
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        with MongoClient(src) as client:
            games = client.bench.games
            while not stop.is_set():
                games.update_one({"_id": rng.choice(ids)}, {"$inc": {"likes_count": 1}})
                written[0] += 1
                time.sleep(1 / writes)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()

    async def stop_writer() -> None:
        stop.set()
        await asyncio.to_thread(thread.join)

    out = tmp / "live"
    started = time.perf_counter()
    live = await backup(src_db, out, consistent=True, after_dump=stop_writer)
    under_writer = time.perf_counter() - started
    assert live.consistent is not None

    mb = len(buffer.getvalue()) / 1e6
    print(f"{docs:,} documents, archive {mb:.0f} MB")
    print(f"backup to a directory        {rate(docs, directory):>9,.0f} docs/s")
    print(
        f"backup to an archive         {rate(docs, archive):>9,.0f} docs/s  "
        f"({directory / archive:.2f}x the directory's speed)"
    )
    print(
        f"backup --consistent, idle    {rate(docs, consistent):>9,.0f} docs/s  "
        f"(overhead {consistent / directory - 1:+.0%})"
    )
    print(
        f"backup --consistent, writer {rate(docs, under_writer):>9,.0f} docs/s  "
        f"(overhead {under_writer / directory - 1:+.0%}; {written[0]} writes at "
        f"{written[0] / under_writer:.0f}/s of the {writes:.0f}/s asked; "
        f"{live.consistent.events} events, {live.consistent.entries} entries, "
        f"{live.consistent.rounds} passes)"
    )

    started = time.perf_counter()
    await restore(dst_db, out, oplog_replay=True)
    restore_dir = time.perf_counter() - started
    await target.drop_database("bench")
    buffer.seek(0)
    started = time.perf_counter()
    await restore_from_archive(dst_db, buffer, source="memory")
    restore_archive = time.perf_counter() - started
    print(f"restore from a directory     {rate(docs, restore_dir):>9,.0f} docs/s  (+ oplog replay)")
    print(
        f"restore from an archive      {rate(docs, restore_archive):>9,.0f} docs/s  "
        f"({restore_dir / restore_archive:.2f}x the directory's speed)"
    )
    await source.close()
    await target.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--doc-size", type=int, default=1700, help="html field size (~2 KB doc)")
    parser.add_argument("--rate", type=float, default=200.0, help="updates/s during --consistent")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-archive-"))
    try:
        with EmbeddedMongo(tmp / "a") as a, EmbeddedMongo(tmp / "b") as b:
            asyncio.run(bench(a.uri, b.uri, args.docs, args.doc_size, args.rate, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

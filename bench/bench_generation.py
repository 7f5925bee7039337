"""Generation pipeline throughput and overhead with a real worker process (issue: real game
generation).

    python bench/bench_generation.py [--tasks 40] [--concurrency 8] [--delay 2]
        [--cover-processes 2] [--cover-mode card] [--play-check off]

`--cover-processes 0` renders the card in threads of the worker's process, and `--src
/path/to/main/src` runs another checkout's worker (the old cover path): run them in one sitting
and compare, the machine's load varies.

A fake OpenAI-compatible server (tests/generation/providers/fake_llm.py, its own process) answers
every request after `--delay` seconds; one `paletai worker --concurrency N` process (the real
OpenAI SDK path) works through `--tasks` tasks queued at once. Prints games per second (goal >= 3.5
at concurrency 8 with a 2 s provider, i.e. no serialisation), and the pipeline's own overhead per
task: the task's total time minus the time spent waiting for the provider (goal median < 300 ms,
cover included), from the stage timings the worker records on each task."""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pymongo import MongoClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from paletai.db.embedded import EmbeddedMongo, free_port  # noqa: E402
from paletai.db.indexes import INDEXES  # noqa: E402
from paletai.jobs.repository import new_task_document  # noqa: E402

DB = "benchgen"


def queue(uri: str, n: int) -> list[str]:
    with MongoClient(uri) as client:
        db = client[DB]
        for collection, models in INDEXES.items():
            db[collection].create_indexes(models)
        now = dt.datetime.now(dt.UTC)
        db.users.insert_one(
            {
                "_id": "u",
                "email": "b@x",
                "username": "bench",
                "password_hash": "x",
                "created_at": now,
            }
        )
        docs = [
            new_task_document(user_id="u", prompt=f"a game {i}", max_attempts=3) for i in range(n)
        ]
        db.tasks.insert_many(docs)
        return [str(d["_id"]) for d in docs]


def wait_done(uri: str, ids: list[str], within: float) -> list[dict[str, object]]:
    deadline = time.monotonic() + within
    with MongoClient(uri, tz_aware=True) as client:
        while time.monotonic() < deadline:
            docs = list(client[DB].tasks.find({"_id": {"$in": ids}}))
            if all(d["status"] in ("succeeded", "failed") for d in docs):
                return docs
            time.sleep(0.1)
    raise SystemExit("the tasks did not finish in time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--delay", type=float, default=2.0, help="provider answer time (s)")
    parser.add_argument("--cover-processes", type=int, default=2, help="0 = threads")
    parser.add_argument("--cover-mode", default="card", choices=["card", "auto", "screenshot"])
    parser.add_argument("--play-check", default="off", choices=["off", "auto"])
    parser.add_argument(
        "--src", default=str(ROOT / "src"), help="the tree the worker runs (another checkout's src)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, EmbeddedMongo(Path(tmp) / "db") as mongo:
        port = free_port()
        fake = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "tests/generation/providers/fake_llm.py"),
                "--port",
                str(port),
                "--delay",
                str(args.delay),
            ],
            stdout=subprocess.DEVNULL,
        )
        ids = queue(mongo.uri, args.tasks)
        env = {
            "PATH": "/usr/bin:/bin",
            # The worker runs this tree's code, whatever the venv's install points at.
            "PYTHONPATH": args.src,
            "DB_PATH": mongo.uri,
            "DB_NAME": DB,
            "PALETAI_DATA_DIR": str(Path(tmp) / "data"),
            "AI_PROVIDER": "openai",
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1",
            "OPENAI_MODEL": "fake",
            "WORKER_POLL_SECONDS": "0.1",
            "LOG_LEVEL": "WARNING",
            "COVER_PROCESSES": str(args.cover_processes),
            "COVER_MODE": args.cover_mode,
            "PLAYABILITY_CHECK": args.play_check,
        }
        time.sleep(1.0)  # the fake server's start-up
        worker = subprocess.Popen(
            [sys.executable, "-m", "paletai", "worker", "--concurrency", str(args.concurrency)],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        try:
            docs = wait_done(mongo.uri, ids, 60 + args.tasks * args.delay)
        finally:
            worker.terminate()
            worker.wait(30)
            fake.terminate()
            fake.wait(10)

    ok = [d for d in docs if d["status"] == "succeeded"]
    starts = [d["started_at"] for d in ok]
    ends = [d["finished_at"] for d in ok]
    span = (max(ends) - min(starts)).total_seconds()  # type: ignore[operator]
    overheads = []
    for d in ok:
        timings: dict[str, float] = d["timings"]  # type: ignore[assignment]
        overheads.append(timings["total_ms"] - timings.get("generating_ms", 0.0))
    generating = [d["timings"]["generating_ms"] for d in ok]  # type: ignore[index]
    print(
        f"{len(ok)}/{len(docs)} tasks succeeded; provider delay {args.delay:.1f} s; "
        f"cover processes {args.cover_processes}, COVER_MODE={args.cover_mode}, "
        f"PLAYABILITY_CHECK={args.play_check}, src {args.src}"
    )
    print(
        f"one worker process, concurrency {args.concurrency}: {len(ok) / span:.2f} games/s "
        f"over {span:.1f} s  (ideal {args.concurrency / args.delay:.2f})"
    )
    print(
        f"provider stage (generating) median {statistics.median(generating):.0f} ms; "
        f"pipeline overhead (validate + cover + publish + bookkeeping) median "
        f"{statistics.median(overheads):.0f} ms, p90 "
        f"{sorted(overheads)[int(0.9 * len(overheads))]:.0f} ms, max {max(overheads):.0f} ms"
    )
    stages = sorted({k for d in ok for k in d["timings"] if k not in ("total_ms",)})  # type: ignore[union-attr]
    medians = {
        k: statistics.median(d["timings"].get(k, 0.0) for d in ok)  # type: ignore[union-attr]
        for k in stages
    }
    print("stage medians: " + ", ".join(f"{k[:-3]} {v:.0f} ms" for k, v in medians.items()))


if __name__ == "__main__":
    main()

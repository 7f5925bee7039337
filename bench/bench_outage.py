"""Benchmark of a database outage under `paletai serve` (embedded database, killed with -9).

    python bench/bench_outage.py                     # 10 s outage (the watchdog's restart delay)
    python bench/bench_outage.py --outage-seconds 20

Prints: how long a request takes to answer 503 during the outage (goal < 2 s; the driver's
default would be 30 s), how many bytes the app logged per second meanwhile (was ~3.7 KB/s of
tracebacks), and how long after the restart the app answered 200 again (no app restart).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from paletai.core.processes import start_process, stop_process_group
from paletai.db.embedded import free_port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage-seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        port, db_port = free_port(), free_port()
        keep = ("PATH", "HOME", "PYTHONPATH", "LANG")
        env = {k: v for k, v in os.environ.items() if k in keep}
        env |= {
            "PALETAI_DATA_DIR": str(work / "data"),
            "PALETAI_DB_PORT": str(db_port),
            "PALETAI_DB_RESTART_DELAY_SECONDS": str(args.outage_seconds),
            "AI_PROVIDER": "offline",
            "LOG_LEVEL": "WARNING",
        }
        log = work / "serve.log"
        proc = start_process(
            [sys.executable, "-m", "paletai", "serve", "--port", str(port)],
            log_path=log,
            env=env,
            cwd=work,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ok(base, 60)
            pid_file = work / "data" / "db" / "run" / f"nx-27017-{db_port}.pid"
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
            killed_at = time.monotonic()
            log_before = log.stat().st_size
            latencies, statuses = [], []
            # Requests during the outage (stop a little before the watchdog's restart).
            while time.monotonic() - killed_at < args.outage_seconds - 2:
                started = time.monotonic()
                response = httpx.get(f"{base}/games/feed", timeout=60)
                latencies.append(time.monotonic() - started)
                statuses.append(response.status_code)
            outage_s = time.monotonic() - killed_at
            log_rate = (log.stat().st_size - log_before) / outage_s
            _wait_ok(base, 60)
            back_after = time.monotonic() - killed_at - args.outage_seconds
        finally:
            stop_process_group(proc, 20)
    print(f"requests during the outage: {len(latencies)}, statuses {sorted(set(statuses))}")
    print(
        f"503 answer time: median {statistics.median(latencies) * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms (goal < 2000 ms; driver default 30000 ms)"
    )
    print(f"log written during the outage: {log_rate:.0f} B/s (was ~3,700 B/s of tracebacks)")
    print(f"answering 200 again {back_after:.1f} s after the watchdog's restart was due")


def _wait_ok(base: str, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"no 200 from {base}/health within {within:.0f} s")


if __name__ == "__main__":
    main()

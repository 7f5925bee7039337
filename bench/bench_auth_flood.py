"""Issue 12's probe as a benchmark: an anonymous flood of registrations and logins against a real
`paletai serve` (embedded database, its own temp data dir), on loopback.

For each scenario: 40 concurrent register loops and 40 concurrent login loops (wrong passwords)
for 20 s, every request with a new X-Forwarded-For address; meanwhile a legitimate user logs in
every 0.5 s from another loopback address. Prints the server's peak RSS (VmHWM, and sampled
VmRSS) and the legitimate login's latency, against a baseline measured idle in the same run.

Scenarios (FORWARDED_ALLOW_IPS left at its default, loopback 127.0.0.1 and ::1):
- probe:  the attacker connects from 127.0.0.3, an untrusted peer, and rotates the header
          (what the issue's probe did): its addresses are its own;
- botnet: the attacker connects from 127.0.0.1, a trusted proxy, so every rotated address counts
          as a different client: the per-address throttles cannot help, only the hashing slots
          and the global registration limit do.

    PYTHONPATH=src python bench/bench_auth_flood.py [--seconds 20] [--scenario probe|botnet|both]

Run with PYTHONPATH pointing at another tree's src to measure that tree (the "before" figure).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ServedApp  # noqa: E402

CONCURRENCY = 40
LEGIT_ADDRESS = "127.0.0.2"
ATTACKER_ADDRESS = {"probe": "127.0.0.3", "botnet": "127.0.0.1"}


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def rotating_address() -> str:
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


async def login_seconds(http: httpx.AsyncClient, email: str, password: str) -> tuple[float, int]:
    started = time.perf_counter()
    try:
        response = await http.post("/auth/login", json={"email": email, "password": password})
        status = response.status_code
    except httpx.HTTPError:
        status = 0  # no answer within the client's timeout
    return time.perf_counter() - started, status


async def scenario(name: str, url: str, pid: int, seconds: float) -> None:
    timeout = httpx.Timeout(30.0)
    limits = httpx.Limits(max_connections=2 * CONCURRENCY + 10)
    legit = httpx.AsyncClient(
        base_url=url,
        timeout=timeout,
        transport=httpx.AsyncHTTPTransport(local_address=LEGIT_ADDRESS),
    )
    attacker = httpx.AsyncClient(
        base_url=url,
        timeout=timeout,
        limits=limits,
        transport=httpx.AsyncHTTPTransport(local_address=ATTACKER_ADDRESS[name], limits=limits),
    )
    email, password = f"legit-{uuid.uuid4().hex[:8]}@example.com", "legit password 1"
    r = await legit.post("/auth/register", json={"email": email, "password": password})
    r.raise_for_status()
    baseline = [(await login_seconds(legit, email, password))[0] for _ in range(5)]

    statuses: dict[str, collections.Counter[int]] = {
        "register": collections.Counter(),
        "login": collections.Counter(),
    }
    rss_samples: list[int] = []
    legit_runs: list[tuple[float, int]] = []
    stop = time.monotonic() + seconds

    async def flood(kind: str) -> None:
        while time.monotonic() < stop:
            headers = {"X-Forwarded-For": rotating_address()}
            body = {"email": f"x-{uuid.uuid4().hex[:12]}@example.com", "password": "guess guess 1"}
            try:
                response = await attacker.post(f"/auth/{kind}", json=body, headers=headers)
                statuses[kind][response.status_code] += 1
            except httpx.HTTPError:
                statuses[kind][0] += 1

    async def sample_rss() -> None:
        while time.monotonic() < stop:
            rss_samples.append(rss_kib(pid))
            await asyncio.sleep(0.2)

    async def legit_logins() -> None:
        await asyncio.sleep(1.0)  # let the flood build up first
        while time.monotonic() < stop:
            legit_runs.append(await login_seconds(legit, email, password))
            await asyncio.sleep(0.5)

    await asyncio.gather(
        *(flood("register") for _ in range(CONCURRENCY)),
        *(flood("login") for _ in range(CONCURRENCY)),
        sample_rss(),
        legit_logins(),
    )
    await legit.aclose()
    await attacker.aclose()

    during = sorted(s for s, _ in legit_runs)
    codes = collections.Counter(code for _, code in legit_runs)
    print(f"\n== {name}: attacker from {ATTACKER_ADDRESS[name]}, {seconds:.0f} s ==")
    print(f"server RSS: peak sampled {max(rss_samples) / 1024:.0f} MB, ", end="")
    print(f"VmHWM (peak since start) {rss_kib(pid, 'VmHWM') / 1024:.0f} MB")
    print(f"legit login idle (baseline): median {statistics.median(baseline) * 1000:.0f} ms")
    if during:
        median_ms = statistics.median(during) * 1000
        print(
            f"legit login under flood: n={len(during)} median {median_ms:.0f} ms, "
            f"max {during[-1] * 1000:.0f} ms, answers {dict(codes)} (0 = none within 30 s)"
        )
    for kind, counter in statuses.items():
        answers = dict(sorted(counter.items()))
        print(f"flood {kind}: {sum(counter.values())} requests, answers {answers}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--scenario", choices=["probe", "botnet", "both"], default="both")
    args = parser.parse_args()
    names = ["probe", "botnet"] if args.scenario == "both" else [args.scenario]
    for name in names:
        # A fresh server (and database) per scenario, so one's throttle state is not the next's.
        with tempfile.TemporaryDirectory(prefix="paletai-auth-flood-") as tmp:
            workdir = Path(tmp)
            env = {"PALETAI_DATA_DIR": str(workdir / "data"), "AI_PROVIDER": "offline"}
            served = ServedApp(workdir, {**env, "DB_PATH": ""})
            try:
                idle_mb = rss_kib(served.proc.pid) / 1024
                print(f"\nserver pid {served.proc.pid}: idle RSS {idle_mb:.0f} MB")
                await scenario(name, served.url, served.proc.pid, args.seconds)
            finally:
                try:
                    served.stop()
                except subprocess.TimeoutExpired:
                    # A server still busy with queued hashes (the "before" tree): stop it hard.
                    served.proc.kill()
                    served.proc.wait(30)


if __name__ == "__main__":
    asyncio.run(main())

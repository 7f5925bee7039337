"""Shared pieces of the benchmarks: timing a request mix, percentiles, a served app."""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from paletai.core.processes import start_process, stop_process_group
from paletai.db.embedded import free_port


@dataclass
class LoadResult:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    percentiles: dict[int, float] | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: int) -> float:
        if self.percentiles is not None:
            return self.percentiles.get(p, float("nan"))
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def line(self, baseline: LoadResult | None = None) -> str:
        ratio = f"  {self.rps / baseline.rps:5.0%} of /health" if baseline else ""
        return (
            f"{self.name:<28} {self.rps:8.1f} req/s  p50 {self.pct(50):7.1f} ms  "
            f"p99 {self.pct(99):7.1f} ms  errors {self.errors}{ratio}"
        )


async def run_load(
    name: str,
    make_request: Callable[[int], Awaitable[httpx.Response]],
    *,
    concurrency: int = 32,
    total: int = 2000,
    ok: Callable[[httpx.Response], bool] = lambda r: r.status_code < 400,
) -> LoadResult:
    """`total` requests from `concurrency` concurrent callers; latency per request."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))

    async def caller() -> None:
        nonlocal errors
        for i in counter:
            started = time.perf_counter()
            try:
                response = await make_request(i)
                good = ok(response)
            except httpx.HTTPError:
                good = False
            latencies.append((time.perf_counter() - started) * 1000)
            if not good:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return LoadResult(name, total, errors, time.perf_counter() - started, latencies)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def wrk(
    name: str,
    url: str,
    *,
    connections: int,
    seconds: int,
    script: str | None = None,
    workdir: Path,
) -> LoadResult:
    """Drive `url` with wrk (C, one thread): a load generator that is not the bottleneck.

    A `script` (Lua) can vary method, path, headers and body per request.
    """
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed for the benchmarks: `make bench` installs it (apt wrk)")
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script:
        path = workdir / f"wrk-{abs(hash(name))}.lua"
        path.write_text(script)
        cmd += ["-s", str(path)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    return parse_wrk(name, out)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    for unit in ("us", "ms", "s"):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * _UNITS[unit]
    return float(text)


def parse_wrk(name: str, out: str) -> LoadResult:
    requests = errors = 0
    seconds = 0.0
    pct: dict[int, float] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].endswith("%") and parts[0][:-1].isdigit():
            pct[int(parts[0][:-1])] = _ms(parts[1])
        elif "requests in" in line:
            requests = int(parts[0])
            seconds = _ms(parts[3].rstrip(",")) / 1000
        elif line.strip().startswith("Non-2xx"):
            errors += int(parts[-1])
        elif line.strip().startswith("Socket errors"):
            errors += sum(int(p.rstrip(",")) for p in parts[3::2])
    result = LoadResult(name, requests, errors, seconds, [])
    result.percentiles = pct
    return result


class ServedApp:
    """`paletai serve` as a process (one uvicorn worker) against the given database."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {**os.environ, **env, "LOG_LEVEL": "WARNING"}
        self.log = workdir / f"serve-{self.port}.log"
        self.proc = start_process(
            [sys.executable, "-m", "paletai", "serve", "--port", str(self.port)],
            log_path=self.log,
            env=full_env,
            cwd=workdir,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"the app did not start; see {self.log}")

    def stop(self) -> None:
        stop_process_group(self.proc, timeout=30)

"""The web console's first page, as a browser loads it: bytes and round trips.

    python bench/bench_console.py [--games 24] [--loads 5]

Starts `paletai serve` on its embedded default (a temporary data dir), makes `--games` games
through the API (offline author), then opens `/` in Chromium (Playwright, /usr/bin/chromium)
`--loads` times with an empty cache and records every request: the HTML, the scripts and styles,
and the data (the API calls the page makes to show the feed). Prints the bytes of each kind (the
cover images apart: they are the covers, not the page), the number of data round trips, and the
time until the first 20 tiles are on screen (median over the loads). Goal: under 100 KB for the
page with the first 20 games' metadata, and one round trip for the data.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ServedApp  # noqa: E402
from paletai.generation.browser import DEFAULT_CHROMIUM, LAUNCH_ARGS  # noqa: E402


def seed(base: str, games: int) -> None:
    with httpx.Client(base_url=base, timeout=30) as http:
        tasks: list[str] = []
        for user in range(0, games, 20):  # the daily prompt limit is 20 per user
            email = f"bench-console-{user}@example.com"
            token = http.post(
                "/auth/register", json={"email": email, "password": "bench-password-1"}
            ).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            for i in range(user, min(user + 20, games)):
                answer = http.post("/games", headers=auth, json={"prompt": f"snake game {i}"})
                answer.raise_for_status()
                tasks.append(answer.json()["task_id"])
            deadline = time.monotonic() + 120
            for task in tasks:
                while http.get(f"/tasks/{task}", headers=auth).json()["status"] != "succeeded":
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"task {task} did not finish")
                    time.sleep(0.1)
            tasks.clear()


async def load_once(base: str) -> tuple[dict[str, int], int, float]:
    from playwright.async_api import async_playwright

    sizes: dict[str, int] = defaultdict(int)
    data_calls = 0
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=DEFAULT_CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = await browser.new_page()
            responses = []
            page.on("response", lambda response: responses.append(response))
            started = time.monotonic()
            await page.goto(base + "/")
            # The console's CSP forbids evaluated strings: wait on the 20th tile instead.
            await page.locator("#feed [data-game]").nth(19).wait_for()
            shown = time.monotonic() - started
            await page.wait_for_load_state("networkidle")
            for response in responses:
                kind = response.request.resource_type
                body = len(await response.body()) if response.status != 304 else 0
                if kind in ("fetch", "xhr"):
                    data_calls += 1
                    sizes["data (API JSON)"] += body
                elif kind == "image" and "/static/game-images/" in response.url:
                    sizes["cover images (not counted)"] += body
                else:
                    sizes[kind] += body
        finally:
            await browser.close()
    return dict(sizes), data_calls, shown


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--games", type=int, default=24)
    parser.add_argument("--loads", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="paletai-bench-console-") as tmp:
        app = ServedApp(Path(tmp), {"PALETAI_DATA_DIR": str(Path(tmp) / "data")})
        try:
            await asyncio.to_thread(seed, app.url, args.games)
            runs = [await load_once(app.url) for _ in range(args.loads)]
        finally:
            app.stop()
    sizes, calls, _ = runs[0]
    page_bytes = sum(v for k, v in sizes.items() if not k.startswith("cover"))
    print(f"first page of the console, {args.games} games in the feed, {args.loads} cold loads")
    for kind, size in sorted(sizes.items()):
        print(f"  {kind:<28} {size / 1024:8.1f} KB")
    print(f"  {'page + first 20 games':<28} {page_bytes / 1024:8.1f} KB   (goal < 100 KB)")
    print(f"  data round trips             {calls:8d}      (goal 1)")
    shown = [r[2] for r in runs]
    print(
        f"  20 tiles on screen after     {statistics.median(shown) * 1000:8.0f} ms median "
        f"(min {min(shown) * 1000:.0f}, max {max(shown) * 1000:.0f})"
    )


if __name__ == "__main__":
    asyncio.run(main())

"""Cover generation per game: the card vs the screenshot of the running game.

    python bench/bench_covers.py [--games 21] [--concurrency 2]

Renders offline games' covers the way a worker does (generation/cover.py's CoverRenderer, the
screenshot through generation/browser.py's GameBrowser, one browser, reused) and prints median and
p95 per game for both, in the same run so the ratio holds on a loaded machine. The browser's start
is measured apart (once per worker process). Needs Chromium (CHROMIUM_PATH or /usr/bin/chromium).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from paletai.generation.browser import GameBrowser, find_chromium, play_complaints  # noqa: E402
from paletai.generation.cover import CoverRenderer, palette_for  # noqa: E402
from paletai.generation.providers.base import GenerationRequest  # noqa: E402
from paletai.generation.providers.offline import OfflineProvider, template_names  # noqa: E402


def summary(label: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    return f"{label}: median {statistics.median(ms):.0f} ms, p95 {p95:.0f} ms over {len(ms)}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--games", type=int, default=21)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=3.0, help="per screenshot, as in prod")
    args = parser.parse_args()
    chromium = find_chromium(os.environ.get("CHROMIUM_PATH"))
    if chromium is None:
        raise SystemExit("no Chromium: set CHROMIUM_PATH")
    names = template_names()
    drafts = [
        OfflineProvider().build(
            GenerationRequest(prompt=f"a {names[i % len(names)]} game", seed=f"s{i}")
        )
        for i in range(args.games)
    ]
    covers = CoverRenderer(2)
    covers.warm()
    browser = GameBrowser(chromium, timeout=args.timeout)
    started = time.monotonic()
    await browser.start()
    print(f"browser start (once per worker process): {time.monotonic() - started:.2f} s")
    gate = asyncio.Semaphore(args.concurrency)
    cards: list[float] = []
    shots: list[float] = []
    failures: list[str] = []

    async def one(i: int) -> None:
        draft = drafts[i]
        palette = palette_for(draft.title, f"s{i}")
        async with gate:
            t = time.monotonic()
            await covers.card(draft.title, draft.description, f"s{i}", palette)
            cards.append(time.monotonic() - t)
            t = time.monotonic()
            try:
                # As games/flows.py does: a (re)start is outside the budget, the rest within it.
                await browser.start()
                t = time.monotonic()
                with anyio.fail_after(args.timeout):
                    report = await browser.play(draft.html)
                    await covers.screenshot(report.screenshot, draft.title, palette)
            except Exception as exc:  # noqa: BLE001 - counted: the worker would keep the card
                failures.append(f"{type(exc).__name__}: {exc}")
                return
            shots.append(time.monotonic() - t)
            if play_complaints(report):
                failures.append(f"game {i} failed the playability check")

    try:
        await asyncio.gather(*(one(i) for i in range(args.games)))
    finally:
        await browser.aclose()
        covers.close()
    print(summary("card cover (process pool)", cards))
    if shots:
        print(summary("screenshot cover (play + input + screenshot + composition)", shots))
        ratio = statistics.median(shots) / statistics.median(cards)
        print(f"screenshot / card median ratio: {ratio:.1f}x")
    print(f"fell back to the card: {len(failures)} of {args.games}")
    for line in failures[:5]:
        print("  " + line)


if __name__ == "__main__":
    asyncio.run(main())

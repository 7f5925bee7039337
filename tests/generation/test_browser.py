"""The headless browser of the pipeline (generation/browser.py): the playability check, the
screenshot cover, and what happens when Chromium is missing, broken or killed."""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from PIL import Image, ImageChops, ImageStat

from paletai.generation.authoring import author_game
from paletai.generation.browser import (
    BrowserUnavailable,
    GameBrowser,
    find_chromium,
    play_complaints,
)
from paletai.generation.cover import palette_for, render_cover, render_screenshot_cover
from paletai.generation.providers.base import GameDraft, GenerationRequest, InvalidGameError
from paletai.generation.providers.offline import OfflineProvider, template_names

CHROMIUM = find_chromium(os.environ.get("CHROMIUM_PATH"))
# `make test` installs Chromium: a machine without it fails these tests rather than skip them.
needs_chromium = pytest.mark.usefixtures("chromium_installed")


@pytest.fixture
def chromium_installed() -> None:
    if CHROMIUM is None:
        pytest.fail("Chromium is not installed: run `make tools` (or set CHROMIUM_PATH)")


# Generous: the test machine is shared and loaded; production uses 3 s.
TIMEOUT = 20.0

THROWS = """<!doctype html><html><body><canvas id="game" width="400" height="300"></canvas>
<script>
const ctx = document.getElementById('game').getContext('2d');
ctx.fillStyle = '#f00'; ctx.fillRect(10, 10, 50, 50);
const player = null;
player.move();
</script></body></html>"""

DRAWS_NOTHING = """<!doctype html><html><body><h1>My game</h1>
<canvas id="game" width="400" height="300"></canvas>
<script>
const ctx = document.getElementById('game').getContext('2d');
document.addEventListener('keydown', () => {});  // waits for a start that never draws
</script></body></html>"""

WORKS = """<!doctype html><html><body><canvas id="game" width="400" height="300"></canvas>
<script>
const ctx = document.getElementById('game').getContext('2d');
ctx.fillStyle = '#123'; ctx.fillRect(0, 0, 400, 300);
ctx.fillStyle = '#fc0'; ctx.fillRect(180, 130, 40, 40);
</script></body></html>"""


def offline_game(name: str, seed: str = "seed-1") -> GameDraft:
    request = GenerationRequest(prompt=f"a {name} game in neon", seed=seed)
    return OfflineProvider().build(request)


def colours(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as image:
        return len(image.convert("RGB").getcolors(maxcolors=1 << 20) or [])


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[GameBrowser]:
    game_browser = GameBrowser(CHROMIUM, timeout=TIMEOUT, launch_timeout=60)
    yield game_browser
    await game_browser.aclose()


@needs_chromium
@pytest.mark.parametrize("name", template_names())
async def test_offline_templates_pass_the_playability_check(
    browser: GameBrowser, name: str
) -> None:
    report = await browser.play(offline_game(name).html)
    assert report.errors == []
    assert not report.blank
    assert report.root == "canvas"
    assert play_complaints(report) == []


@needs_chromium
async def test_a_game_that_throws_fails_the_check(browser: GameBrowser) -> None:
    report = await browser.play(THROWS)
    complaints = play_complaints(report)
    assert len(complaints) == 1
    assert "uncaught error" in complaints[0]
    assert "null" in complaints[0]  # the browser's own message, for the model to act on


@needs_chromium
async def test_a_game_that_draws_nothing_fails_the_check(browser: GameBrowser) -> None:
    report = await browser.play(DRAWS_NOTHING)
    assert report.errors == []
    # The page has a heading, but the canvas the game is played in stays empty.
    assert report.blank
    assert report.root == "canvas"
    assert any("stays blank" in c for c in play_complaints(report))


@needs_chromium
async def test_the_game_cannot_reach_the_network(browser: GameBrowser) -> None:
    html = WORKS.replace(
        "</script>",
        "const i = new Image(); i.onerror = () => { throw new Error('blocked: ' + i.src); };"
        " i.src = 'https://example.com/x.png';</script>",
    )
    report = await browser.play(html)
    assert any("blocked: https://example.com/x.png" in e for e in report.errors)


class _Provider:
    """Answers `first`, then `repaired` in the repair round, noting the complaints it got."""

    name = "stub"

    def __init__(self, first: str, repaired: str) -> None:
        self.first, self.repaired = first, repaired
        self.complaints: list[str] = []

    def _draft(self, html: str) -> GameDraft:
        return GameDraft("T", "D", "C", html, "stub", "m", {})

    async def generate(self, request: GenerationRequest, progress: Any) -> GameDraft:
        return self._draft(self.first)

    async def repair(
        self, request: GenerationRequest, draft: GameDraft, complaints: list[str], progress: Any
    ) -> GameDraft:
        self.complaints = complaints
        return self._draft(self.repaired)


async def _progress(stage: str, info: dict[str, Any]) -> None:
    return None


@needs_chromium
async def test_the_complaint_goes_into_the_repair_round(browser: GameBrowser) -> None:
    async def check(html: str) -> list[str]:
        return play_complaints(await browser.play(html))

    provider = _Provider(THROWS, WORKS)
    request = GenerationRequest(prompt="p", seed="s")
    draft = await author_game(provider, request, _progress, check=check)  # type: ignore[arg-type]
    assert draft.html == WORKS
    assert any("uncaught error" in c and "null" in c for c in provider.complaints)

    still_blank = _Provider(THROWS, DRAWS_NOTHING)
    with pytest.raises(InvalidGameError, match="stays blank"):
        await author_game(still_blank, request, _progress, check=check)  # type: ignore[arg-type]


@needs_chromium
async def test_screenshot_cover_of_an_offline_game(browser: GameBrowser) -> None:
    draft = offline_game("breakout")
    palette = palette_for("a breakout game in neon", "seed-1")
    report = await browser.play(draft.html)
    cover = render_screenshot_cover(report.screenshot, draft.title, palette)
    card = render_cover(draft.title, draft.description, "seed-1", palette)
    with Image.open(io.BytesIO(cover)) as image:
        assert image.format == "PNG"
        assert image.size == (1200, 630)
        shot = image.convert("RGB")
    with Image.open(io.BytesIO(card)) as image:
        diff = ImageChops.difference(shot, image.convert("RGB")).convert("L")
    assert ImageStat.Stat(diff).mean[0] > 10
    assert colours(cover) > 50
    # Not just the title band: the game's area above it has something drawn.
    top = shot.crop((0, 0, 1200, 400)).convert("L")
    assert ImageStat.Stat(top).stddev[0] > 5


def _script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "fake-chromium"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


async def test_a_browser_that_will_not_start_is_unavailable(tmp_path: Path) -> None:
    broken = GameBrowser(_script(tmp_path, "exit 1"), timeout=5, launch_timeout=30)
    try:
        with pytest.raises(BrowserUnavailable, match="did not start"):
            await broken.play(WORKS)
        # Not tried again at once: a broken browser must not cost every task a launch.
        with pytest.raises(BrowserUnavailable, match="a moment ago"):
            await broken.play(WORKS)
    finally:
        await broken.aclose()


def test_a_missing_browser_is_not_found(tmp_path: Path) -> None:
    assert find_chromium(str(tmp_path / "nowhere")) is None
    assert find_chromium(_script(tmp_path, "exit 0")) == str(tmp_path / "fake-chromium")
    assert GameBrowser(None).available is False


def _chromium_children() -> list[psutil.Process]:
    me = psutil.Process()
    return [p for p in me.children(recursive=True) if "chrom" in p.name().lower()]


@needs_chromium
async def test_a_killed_browser_is_started_again() -> None:
    game_browser = GameBrowser(CHROMIUM, timeout=TIMEOUT, launch_timeout=60)
    try:
        assert not (await game_browser.play(WORKS)).blank
        assert game_browser.launches == 1
        for process in _chromium_children():
            process.kill()
        # The task that meets the dead browser is told so (its cover stays the card) ...
        try:
            await game_browser.play(WORKS)
        except BrowserUnavailable:
            pass
        # ... and the next one gets a new browser.
        report = await game_browser.play(WORKS)
        assert not report.blank
        assert game_browser.launches == 2
    finally:
        await game_browser.aclose()

"""The game's flow with covers: the card is published first, a screenshot replaces it after;
any trouble with the browser keeps the card and never fails the game."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from paletai.config import Settings
from paletai.db.client import Database
from paletai.db.indexes import ensure_indexes
from paletai.games.flows import GameFlow
from paletai.games.repository import GamesRepository
from paletai.generation.browser import BrowserUnavailable, GameBrowser, PlayReport, find_chromium
from paletai.generation.cover import CoverRenderer
from paletai.generation.providers.offline import OfflineProvider
from paletai.jobs.repository import TasksRepository
from paletai.jobs.schemas import Task
from paletai.notifications.sender import LoggingPushSender
from paletai.storage.local import LocalImageStore

CHROMIUM = find_chromium(os.environ.get("CHROMIUM_PATH"))


class GatedBrowser(GameBrowser):
    """A real browser whose screenshots wait for the test to open the gate."""

    def __init__(self, executable: str) -> None:
        super().__init__(executable, timeout=20, launch_timeout=60)
        self.gate = asyncio.Event()
        self.calls = 0

    async def play(self, html: str) -> PlayReport:
        self.calls += 1
        await self.gate.wait()
        return await super().play(html)


async def _report(stage: str, info: dict[str, Any]) -> None:
    return None


async def _task(db: Database) -> Task:
    await ensure_indexes(db)
    return await TasksRepository(db).create(user_id="u1", prompt="a pong game", max_attempts=3)


def _flow(
    db: Database, settings: Settings, tmp_path: Path, browser: GameBrowser | None
) -> GameFlow:
    store = LocalImageStore(tmp_path / "images")
    return GameFlow(
        db,
        store,
        OfflineProvider(),
        LoggingPushSender(),
        settings,
        browser=browser,
        covers=CoverRenderer(0),
    )


async def test_published_with_the_card_then_the_screenshot_replaces_it(
    db: Database, settings_with: Any, tmp_path: Path
) -> None:
    assert CHROMIUM is not None, "Chromium is not installed: run `make tools`"
    settings = settings_with(COVER_MODE="auto", PLAYABILITY_CHECK="off")
    browser = GatedBrowser(CHROMIUM)
    flow = _flow(db, settings, tmp_path, browser)
    flow.cover_seconds = 30  # production's 3 s budget is too short on the loaded test machine
    task = await _task(db)
    images = tmp_path / "images"
    try:
        await flow.run(task, _report)
        # The task is done and the game is out, with its card, while the screenshot waits.
        game = await GamesRepository(db).get(task.game_id)
        assert game is not None
        assert game.image_name == f"{task.game_id}.png"
        assert game.image_url == f"/static/game-images/{task.game_id}.png"
        assert (images / f"{task.game_id}.png").exists()
        for _ in range(600):  # the browser starts first: wait for the screenshot's turn
            if browser.calls:
                break
            await asyncio.sleep(0.1)
        assert browser.calls == 1
        game = await GamesRepository(db).get(task.game_id)
        assert game is not None
        assert game.image_name == f"{task.game_id}.png"  # still the card while it waits

        browser.gate.set()
        await flow.wait_covers()
        game = await GamesRepository(db).get(task.game_id)
        assert game is not None
        # A new name: the old URL may sit in caches as immutable.
        assert game.image_name == f"{task.game_id}-play.png"
        assert game.image_url == f"/static/game-images/{task.game_id}-play.png"
        assert (images / f"{task.game_id}-play.png").exists()
        # The card stays for whoever read its URL a moment ago; the game remembers it.
        assert game.card_name == f"{task.game_id}.png"
        assert (images / f"{task.game_id}.png").exists()
    finally:
        await flow.aclose()


class BrokenBrowser(GameBrowser):
    def __init__(self) -> None:
        super().__init__("/nonexistent/chromium")
        self.calls = 0

    async def play(self, html: str) -> PlayReport:
        self.calls += 1
        raise BrowserUnavailable("Chromium did not start: exit code 1")

    async def start(self) -> None:
        raise BrowserUnavailable("Chromium did not start: exit code 1")


async def test_a_broken_browser_keeps_the_card_and_the_game(
    db: Database, settings_with: Any, tmp_path: Path
) -> None:
    settings = settings_with(COVER_MODE="screenshot", PLAYABILITY_CHECK="auto")
    browser = BrokenBrowser()
    flow = _flow(db, settings, tmp_path, browser)
    task = await _task(db)
    try:
        draft = await flow.run(task, _report)
        await flow.wait_covers()
    finally:
        await flow.aclose()
    assert draft.provider == "offline"
    assert browser.calls == 1  # the playability check ran, and gave up quietly
    game = await GamesRepository(db).get(task.game_id)
    assert game is not None
    assert game.image_url == f"/static/game-images/{task.game_id}.png"
    assert (tmp_path / "images" / f"{task.game_id}.png").exists()


async def test_a_chromium_that_exits_1_keeps_the_card(
    db: Database, settings_with: Any, tmp_path: Path
) -> None:
    script = tmp_path / "chromium"
    script.write_text("#!/bin/sh\nexit 1\n")
    script.chmod(0o755)
    settings = settings_with(
        COVER_MODE="screenshot", PLAYABILITY_CHECK="auto", CHROMIUM_PATH=str(script)
    )
    flow = _flow(db, settings, tmp_path, None)
    assert flow.browser is not None
    assert flow.browser.executable == str(script)
    task = await _task(db)
    try:
        await flow.run(task, _report)
        await flow.wait_covers()
    finally:
        await flow.aclose()
    game = await GamesRepository(db).get(task.game_id)
    assert game is not None
    assert game.image_url == f"/static/game-images/{task.game_id}.png"


async def test_no_browser_when_chromium_is_missing_or_covers_are_cards(
    db: Database, settings_with: Any, tmp_path: Path
) -> None:
    missing = settings_with(COVER_MODE="auto", CHROMIUM_PATH=str(tmp_path / "nowhere"))
    assert _flow(db, missing, tmp_path, None).browser is None
    cards = settings_with(COVER_MODE="card", PLAYABILITY_CHECK="off")
    assert _flow(db, cards, tmp_path, None).browser is None
    flow = _flow(db, missing, tmp_path, None)
    task = await _task(db)
    await flow.run(task, _report)
    await flow.aclose()
    game = await GamesRepository(db).get(task.game_id)
    assert game is not None
    assert game.image_url == f"/static/game-images/{task.game_id}.png"


class CannedBrowser(GameBrowser):
    """A browser whose screenshot is a given PNG (no Chromium needed)."""

    def __init__(self, png: bytes) -> None:
        super().__init__("/nonexistent/chromium")
        self.png = png

    async def start(self) -> None:
        return None

    async def play(self, html: str) -> PlayReport:
        return PlayReport(screenshot=self.png)


async def test_no_screenshot_cover_is_written_while_writes_are_paused(
    db: Database, settings_with: Any, tmp_path: Path
) -> None:
    from paletai.core.maintenance import MaintenanceState
    from paletai.generation.cover import palette_for, render_cover

    settings = settings_with(COVER_MODE="screenshot", PLAYABILITY_CHECK="off")
    png = render_cover("shot", "", "seed", palette_for("shot", "seed"))
    maintenance = MaintenanceState(db)
    flow = GameFlow(
        db,
        LocalImageStore(tmp_path / "images"),
        OfflineProvider(),
        LoggingPushSender(),
        settings,
        browser=CannedBrowser(png),
        covers=CoverRenderer(0),
        maintenance=maintenance,
    )
    paused, running = await _task(db), await _task(db)
    try:
        await maintenance.set(True, "db cutover")
        await flow.run(paused, _report)
        await flow.wait_covers()
        await maintenance.set(False)
        await flow.run(running, _report)
        await flow.wait_covers()
    finally:
        await maintenance.set(False)
        await flow.aclose()
    kept = await GamesRepository(db).get(paused.game_id)
    assert kept is not None
    assert kept.image_name == f"{paused.game_id}.png"  # the card, in the database and on disk
    assert not (tmp_path / "images" / f"{paused.game_id}-play.png").exists()
    swapped = await GamesRepository(db).get(running.game_id)
    assert swapped is not None
    assert swapped.image_name == f"{running.game_id}-play.png"

"""The game's flow, run by a worker holding the task's lease: request -> author -> cover ->
publish -> notify, and what a failure gives back (the prompt to the quota, a push, telemetry).

`report` records each stage on the task (and renews the lease), so a poller sees where it is:
generating -> validating -> cover -> publishing. The game id was fixed when the task was
created, so running this twice (after a crash) still publishes at most one game.

With Chromium at hand (generation/browser.py), validation also plays the game headless (a throw
or a blank canvas goes to the repair round), and the published card cover is replaced, off the
task's critical path, by a screenshot of the game under its title.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import anyio

from paletai.config import Settings
from paletai.core import telemetry
from paletai.core.context import AppContext
from paletai.core.maintenance import MaintenanceState
from paletai.db.client import Database
from paletai.games.quota import PromptQuota
from paletai.games.repository import GamesRepository
from paletai.generation.authoring import author_game
from paletai.generation.browser import (
    BrowserUnavailable,
    GameBrowser,
    find_chromium,
    play_complaints,
)
from paletai.generation.cover import CoverRenderer, Palette, palette_for
from paletai.generation.providers.base import (
    GameDraft,
    GameProvider,
    GenerationRequest,
    ProviderError,
)
from paletai.jobs.repository import TasksRepository
from paletai.jobs.schemas import Task
from paletai.jobs.worker import Report, TaskFailed, WorkerPool
from paletai.notifications.base import PushSender
from paletai.notifications.service import notify_game_failed, notify_game_ready
from paletai.storage.base import ImageStore
from paletai.users.repository import UsersRepository

log = logging.getLogger(__name__)

# The most a screenshot cover may take (page, input, screenshot, composition).
SCREENSHOT_COVER_SECONDS = 3.0
# On shutdown, how long covers still being replaced may finish before they are dropped.
COVER_GRACE_SECONDS = 5.0


class GameFlow:
    """The worker's handler for generation tasks (jobs.worker.TaskHandler[GameDraft])."""

    def __init__(
        self,
        db: Database,
        store: ImageStore,
        provider: GameProvider,
        push: PushSender,
        settings: Settings,
        *,
        browser: GameBrowser | None = None,
        covers: CoverRenderer | None = None,
        maintenance: MaintenanceState | None = None,
    ) -> None:
        self.db = db
        # Screenshot covers are written after the task ends: they must respect maintenance too.
        self.maintenance = maintenance
        self.store = store
        self.provider = provider
        self.push = push
        self.settings = settings
        self.covers = covers or CoverRenderer(settings.COVER_PROCESSES)
        wants_browser = settings.COVER_MODE != "card" or settings.PLAYABILITY_CHECK == "auto"
        if browser is None and wants_browser:
            chromium = find_chromium(settings.CHROMIUM_PATH)
            if chromium is not None:
                browser = GameBrowser(chromium, timeout=SCREENSHOT_COVER_SECONDS)
            elif settings.COVER_MODE == "screenshot" or settings.CHROMIUM_PATH:
                log.warning(
                    "no Chromium at %s: card covers and no playability check "
                    "(set CHROMIUM_PATH to a Chromium executable)",
                    settings.CHROMIUM_PATH or "/usr/bin/chromium",
                )
        self.browser = browser
        self.cover_seconds = SCREENSHOT_COVER_SECONDS
        self._cover_jobs: set[asyncio.Task[bool]] = set()

    async def build_request(self, task: Task) -> GenerationRequest:
        parent_html = parent_title = None
        if task.parent_id:
            repo = GamesRepository(self.db)
            parent = await repo.get(task.parent_id)
            parent_html = await repo.get_html(task.parent_id)
            if parent is None or parent_html is None:
                raise ProviderError("the game to remix was deleted before it could be remixed")
            parent_title = parent.title
        return GenerationRequest(
            prompt=task.prompt,
            seed=task.game_id,
            parent_html=parent_html,
            parent_title=parent_title,
        )

    async def run(self, task: Task, report: Report) -> GameDraft:
        """Make, illustrate and publish the task's game. Fails the task (TaskFailed, with a
        message a player can read) when the game cannot be made."""
        try:
            return await self._make(task, report)
        except ProviderError as exc:
            raise TaskFailed(exc.message, type(exc).__name__) from exc

    async def _make(self, task: Task, report: Report) -> GameDraft:
        request = await self.build_request(task)
        delay = self.settings.GENERATION_TEST_DELAY_SECONDS
        if delay:
            await report("generating", {"test_delay_seconds": delay})
            await anyio.sleep(delay)

        # The playability check's last screenshot, kept for the cover: (html, JPEG).
        shot: list[tuple[str, bytes]] = []

        async def play_check(html: str) -> list[str]:
            assert self.browser is not None
            try:
                played = await self.browser.play(html)
            except BrowserUnavailable as exc:
                # The browser's trouble is not the game's: publish it unchecked.
                log.warning("playability check of game %s skipped: %s", task.game_id, exc)
                return []
            shot[:] = [(html, played.screenshot)]
            return play_complaints(played)

        check = (
            play_check
            if self.browser is not None and self.settings.PLAYABILITY_CHECK == "auto"
            else None
        )
        draft = await author_game(self.provider, request, report, check=check)

        await report("cover", {})
        palette = palette_for(task.prompt, task.game_id)
        png = await self.covers.card(draft.title, draft.description, task.game_id, palette)
        image_name = f"{task.game_id}.png"
        image_url = await self.store.save_png(image_name, png)

        await report("publishing", {})
        author = await UsersRepository(self.db).get(task.user_id)
        game: dict[str, Any] = {
            "_id": task.game_id,
            "title": draft.title[:120],
            "description": draft.description[:1000],
            "controls": draft.controls[:500],
            "prompt": task.prompt,
            "author_id": task.user_id,
            "author_username": author.username if author else "unknown",
            "image_name": image_name,
            "image_url": image_url,
            "likes_count": 0,
            "provider": draft.provider,
            "model": draft.model,
            "usage": draft.usage,
            "parent_id": task.parent_id,
            "task_id": task.id,
            "html_size": len(draft.html.encode()),
        }
        published = await GamesRepository(self.db).publish(game, draft.html)
        if not published:
            log.info(
                "game %s of task %s was already published by an earlier attempt",
                task.game_id,
                task.id,
            )
        elif self.browser is not None and self.settings.COVER_MODE != "card":
            screenshot = shot[0][1] if shot and shot[0][0] == draft.html else None
            job = asyncio.create_task(
                self.replace_cover(task.game_id, draft, image_name, palette, screenshot),
                name=f"paletai-cover-{task.game_id}",
            )
            self._cover_jobs.add(job)
            job.add_done_callback(self._cover_jobs.discard)
        return draft

    async def replace_cover(
        self,
        game_id: str,
        draft: GameDraft,
        card_name: str,
        palette: Palette,
        screenshot: bytes | None = None,
    ) -> bool:
        """Swap the published card for a screenshot cover (under a new name: covers are cached
        as immutable, and the card's URL keeps working for whoever read it before). Any trouble
        keeps the card; True when the cover was replaced."""
        assert self.browser is not None
        name = f"{game_id}-play.png"
        try:
            if screenshot is None:
                await self.browser.start()
            with anyio.fail_after(self.cover_seconds):
                if screenshot is None:
                    screenshot = (await self.browser.play(draft.html)).screenshot
                png = await self.covers.screenshot(screenshot, draft.title, palette)
            # A database move pauses writes (db cutover): a late cover written to the old side
            # would differ from the new one, so the game keeps its card.
            if await self._paused(game_id):
                return False
            url = await self.store.save_png(name, png)
            if await self._paused(game_id):
                await self.store.delete(name)
                return False
            if not await GamesRepository(self.db).replace_cover(game_id, card_name, name, url):
                await self.store.delete(name)  # the game was deleted meanwhile
                return False
            # The card stays (the game remembers it as `card_name`; deleting the game deletes
            # both): a feed or page read a moment ago still shows its URL.
        except (BrowserUnavailable, TimeoutError) as exc:
            log.info("game %s keeps its card cover: %s", game_id, exc)
            return False
        except Exception:  # noqa: BLE001 - a cover is never worth failing a published game
            log.warning("game %s keeps its card cover", game_id, exc_info=True)
            return False
        return True

    async def _paused(self, game_id: str) -> bool:
        if self.maintenance is not None and await self.maintenance.is_on(fresh=True):
            log.info("game %s keeps its card cover: writes are paused (maintenance)", game_id)
            return True
        return False

    async def wait_covers(self) -> None:
        """Until the screenshot covers being made now are done (tests, shutdown)."""
        if self._cover_jobs:
            await asyncio.wait(set(self._cover_jobs))

    async def start(self) -> None:
        """Called by the worker pool as it starts."""
        self.covers.warm()

    async def aclose(self) -> None:
        """Let the covers in progress finish (briefly), then stop the browser and the pool."""
        with anyio.move_on_after(COVER_GRACE_SECONDS):
            await self.wait_covers()
        for job in list(self._cover_jobs):
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job
        if self.browser is not None:
            await self.browser.aclose()
        self.covers.close()

    async def succeeded(self, task: Task, result: GameDraft, seconds: float) -> None:
        telemetry.record_generation(result.provider, seconds, True)
        await notify_game_ready(self.db, self.push, task.user_id, task.game_id, result.title)

    async def failed(self, task: Task, message: str, reason: str, seconds: float) -> None:
        telemetry.record_generation(self.provider.name, seconds, False, reason)
        if task.quota_day:
            await PromptQuota(self.db, self.settings.DAILY_PROMPT_LIMIT).give_back(
                task.user_id, task.quota_day
            )
        await notify_game_failed(self.db, self.push, task.user_id, task.id, message)


def game_workers(ctx: AppContext, concurrency: int | None = None) -> WorkerPool[GameDraft]:
    """A worker pool that runs generation tasks: the wiring of the app and `paletai worker`."""
    flow = GameFlow(
        ctx.db, ctx.store, ctx.provider, ctx.push, ctx.settings, maintenance=ctx.maintenance
    )
    return WorkerPool(
        TasksRepository(ctx.db),
        ctx.settings,
        handler=flow,
        maintenance=ctx.maintenance,
        concurrency=concurrency,
    )

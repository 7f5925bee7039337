"""The game's flow, run by a worker holding the task's lease: request -> author -> cover ->
publish -> notify, and what a failure gives back (the prompt to the quota, a push, telemetry).

`report` records each stage on the task (and renews the lease), so a poller sees where it is:
generating -> validating -> cover -> publishing. The game id was fixed when the task was
created, so running this twice (after a crash) still publishes at most one game.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio

from paletai.config import Settings
from paletai.core import telemetry
from paletai.core.context import AppContext
from paletai.db.client import Database
from paletai.games.quota import PromptQuota
from paletai.games.repository import GamesRepository
from paletai.generation.authoring import author_game
from paletai.generation.cover import palette_for, render_cover
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


class GameFlow:
    """The worker's handler for generation tasks (jobs.worker.TaskHandler[GameDraft])."""

    def __init__(
        self,
        db: Database,
        store: ImageStore,
        provider: GameProvider,
        push: PushSender,
        settings: Settings,
    ) -> None:
        self.db = db
        self.store = store
        self.provider = provider
        self.push = push
        self.settings = settings

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

        draft = await author_game(self.provider, request, report)

        await report("cover", {})
        png = await anyio.to_thread.run_sync(
            render_cover,
            draft.title,
            draft.description,
            task.game_id,
            palette_for(task.prompt, task.game_id),
        )
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
        return draft

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
    flow = GameFlow(ctx.db, ctx.store, ctx.provider, ctx.push, ctx.settings)
    return WorkerPool(
        TasksRepository(ctx.db),
        ctx.settings,
        handler=flow,
        maintenance=ctx.maintenance,
        concurrency=concurrency,
    )

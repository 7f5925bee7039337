"""One generation task, stage by stage: generating -> validating -> cover -> publishing.

Runs inside a worker that holds the task's lease; `report` records the stage on the task (and
renews the lease), so a poller sees where it is. The game id was fixed when the task was
created, so running this twice (after a crash) still publishes at most one game.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio

from paletai.core.context import AppContext
from paletai.games.repository import GamesRepository
from paletai.generation.authoring import author_game
from paletai.generation.cover import palette_for, render_cover
from paletai.generation.providers.base import GameDraft, GenerationRequest, Progress, ProviderError
from paletai.jobs.schemas import Task
from paletai.users.repository import UsersRepository

log = logging.getLogger(__name__)


async def build_request(ctx: AppContext, task: Task) -> GenerationRequest:
    parent_html = parent_title = None
    if task.parent_id:
        repo = GamesRepository(ctx.db)
        parent = await repo.get(task.parent_id)
        parent_html = await repo.get_html(task.parent_id)
        if parent is None or parent_html is None:
            raise ProviderError("the game to remix was deleted before it could be remixed")
        parent_title = parent.title
    return GenerationRequest(
        prompt=task.prompt, seed=task.game_id, parent_html=parent_html, parent_title=parent_title
    )


async def run_generation(ctx: AppContext, task: Task, report: Progress) -> GameDraft:
    """Make, illustrate and publish the task's game. Raises ProviderError with a message a
    player can read when the game cannot be made."""
    request = await build_request(ctx, task)
    delay = ctx.settings.GENERATION_TEST_DELAY_SECONDS
    if delay:
        await report("generating", {"test_delay_seconds": delay})
        await anyio.sleep(delay)

    draft = await author_game(ctx.provider, request, report)

    await report("cover", {})
    png = await anyio.to_thread.run_sync(
        render_cover,
        draft.title,
        draft.description,
        task.game_id,
        palette_for(task.prompt, task.game_id),
    )
    image_name = f"{task.game_id}.png"
    image_url = await ctx.store.save_png(image_name, png)

    await report("publishing", {})
    author = await UsersRepository(ctx.db).get(task.user_id)
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
    published = await GamesRepository(ctx.db).publish(game, draft.html)
    if not published:
        log.info(
            "game %s of task %s was already published by an earlier attempt", task.game_id, task.id
        )
    return draft

"""What players are told: their game is ready (or not), someone liked their game."""

from __future__ import annotations

import logging

from paletai.core.context import AppContext
from paletai.db.client import Database
from paletai.games.schemas import GameInDB
from paletai.notifications.base import PushSender
from paletai.notifications.repository import SubscriptionsRepository
from paletai.users.schemas import UserInDB

log = logging.getLogger(__name__)


async def _send(
    db: Database, push: PushSender, user_id: str, heading: str, message: str, data: dict[str, str]
) -> bool:
    try:
        players = await SubscriptionsRepository(db).player_ids(user_id)
        if not players:
            return False
        return await push.send(players, heading, message, data)
    except Exception:  # noqa: BLE001 - a push never fails a request or a task
        log.exception("push to user %s failed", user_id)
        return False


async def notify_game_ready(
    db: Database, push: PushSender, user_id: str, game_id: str, title: str
) -> bool:
    return await _send(
        db, push, user_id, "Your game is ready", f"{title} is ready to play!", {"game_id": game_id}
    )


async def notify_game_failed(
    db: Database, push: PushSender, user_id: str, task_id: str, reason: str
) -> bool:
    return await _send(
        db,
        push,
        user_id,
        "Your game could not be made",
        f"Sorry, we could not make your game: {reason}"[:200],
        {"task_id": task_id},
    )


async def notify_liked(ctx: AppContext, game: GameInDB, liker: UserInDB) -> bool:
    """At most one "liked" push per game per hour, and none to an author without devices."""
    if not ctx.push.configured:
        return False
    repo = SubscriptionsRepository(ctx.db)
    try:
        players = await repo.player_ids(game.author_id)
        if not players or not await repo.may_send_like(game.id):
            return False
        return await ctx.push.send(
            players,
            "Someone liked your game",
            f"{liker.username} liked {game.title}",
            {"game_id": game.id},
        )
    except Exception:  # noqa: BLE001 - a push never fails a request
        log.exception("like push for game %s failed", game.id)
        return False

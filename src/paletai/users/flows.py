"""Leaving: deleting an account and everything that is only theirs."""

from __future__ import annotations

import logging

from paletai.core.context import AppContext
from paletai.games import service as games
from paletai.games.quota import PromptQuota
from paletai.games.repository import GamesRepository
from paletai.notifications.repository import SubscriptionsRepository
from paletai.users.repository import UsersRepository
from paletai.users.schemas import UserInDB

log = logging.getLogger(__name__)


async def delete_account(ctx: AppContext, user: UserInDB) -> None:
    """Delete the user's games (and covers), likes, push subscriptions, prompt usage, then the
    account itself. The account goes last, so a failure half-way can be retried with the same
    token; every step is idempotent."""
    repo = GamesRepository(ctx.db)
    while own := await repo.newest(100, author_id=user.id):
        for game in own:
            await games.delete_game(ctx, game.id, user)
    # One unlike per like, through the path the API uses, so every count stays right.
    for game_id in await repo.liked_by(user.id):
        await repo.unlike(game_id, user.id)
    await SubscriptionsRepository(ctx.db).delete_for_user(user.id)
    await PromptQuota(ctx.db, ctx.settings.DAILY_PROMPT_LIMIT).forget(user.id)
    await UsersRepository(ctx.db).delete(user.id)
    # This process stops honouring the account's tokens at once; others within the cache TTL.
    ctx.users.invalidate(user.id)
    log.info("account %s deleted", user.id)

"""Game rules: creating (queueing) games, shaping them for the API, likes, deletion."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import re
from collections.abc import AsyncIterator

from paletai.core.context import AppContext
from paletai.core.errors import AppError, Forbidden, NotFound
from paletai.db.client import Database
from paletai.games.quota import PromptQuota
from paletai.games.repository import GamesRepository, LikesRecount
from paletai.games.schemas import (
    Author,
    FeedSort,
    GameInDB,
    GamePage,
    GamePublic,
    LikesRepair,
    LikeState,
)
from paletai.jobs.repository import TasksRepository
from paletai.jobs.schemas import Task
from paletai.notifications.service import notify_liked
from paletai.users.schemas import UserInDB

log = logging.getLogger(__name__)


class InvalidCursor(AppError):
    status_code = 422
    code = "invalid_cursor"


# Cursors carry int64 values (rank, likes_count): up to 19 ASCII digits each, in int64's range.
_CURSOR_TEXT = re.compile(r"-?[0-9]{1,19}(?:\.-?[0-9]{1,19})*")
INT64_RANGE = range(-(2**63), 2**63)


def encode_cursor(*parts: int) -> str:
    raw = ".".join(str(p) for p in parts).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *sizes: int) -> tuple[int, ...]:
    """The integers in a cursor with one of `sizes` parts; InvalidCursor (422) otherwise."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    # Out of int64's range, a value would make the database driver raise OverflowError.
    parts = tuple(int(p) for p in raw.split(".")) if _CURSOR_TEXT.fullmatch(raw) else ()
    if len(parts) not in sizes or any(p not in INT64_RANGE for p in parts):
        raise InvalidCursor("invalid cursor: pass the next_cursor of the previous page unchanged")
    return parts


def to_public(game: GameInDB, base_url: str, liked: bool) -> GamePublic:
    image_url = game.image_url
    if image_url and image_url.startswith("/"):
        image_url = base_url + image_url
    return GamePublic(
        id=game.id,
        title=game.title,
        description=game.description,
        controls=game.controls,
        prompt=game.prompt,
        author=Author(id=game.author_id, username=game.author_username),
        image_url=image_url,
        play_url=f"{base_url}/games/{game.id}/play",
        likes_count=game.likes_count,
        liked_by_me=liked,
        provider=game.provider,
        model=game.model,
        parent_id=game.parent_id,
        created_at=game.created_at,
    )


async def shape(
    ctx: AppContext, games: list[GameInDB], user: UserInDB | None, base_url: str
) -> list[GamePublic]:
    liked = (
        await GamesRepository(ctx.db).liked_among(user.id, [g.id for g in games]) if user else set()
    )
    return [to_public(g, base_url, g.id in liked) for g in games]


async def queue_game(
    ctx: AppContext, user: UserInDB, prompt: str, parent: GameInDB | None = None
) -> Task:
    """Count the prompt against the daily limit and queue its generation."""
    quota = PromptQuota(ctx.db, ctx.settings.DAILY_PROMPT_LIMIT)
    day = await quota.take(user.id)
    task = await TasksRepository(ctx.db).create(
        user_id=user.id,
        prompt=prompt,
        max_attempts=ctx.settings.TASK_MAX_ATTEMPTS,
        kind="remix" if parent else "generate",
        parent_id=parent.id if parent else None,
        quota_day=day,
    )
    if ctx.workers is not None:
        ctx.workers.wake()
    return task


async def get_game(ctx: AppContext, game_id: str) -> GameInDB:
    game = await GamesRepository(ctx.db).get(game_id)
    if game is None:
        raise NotFound(f"no game with id {game_id!r}")
    return game


async def feed(
    ctx: AppContext,
    sort: FeedSort,
    limit: int,
    cursor: str | None,
    user: UserInDB | None,
    base_url: str,
) -> GamePage:
    repo = GamesRepository(ctx.db)
    # One more than asked tells whether there is a next page without a count.
    if sort == "popular":
        after = decode_cursor(cursor, 2) if cursor else None
        games = await repo.popular(limit + 1, (after[0], after[1]) if after else None)
    else:
        # The rank is the last part: a popular order's (likes_count, rank) cursor works too.
        before = decode_cursor(cursor, 1, 2)[-1] if cursor else None
        games = await repo.newest(limit + 1, before)
    return await _page(ctx, games, limit, user, base_url, popular=sort == "popular")


async def my_games(
    ctx: AppContext, user: UserInDB, limit: int, cursor: str | None, base_url: str
) -> GamePage:
    before = decode_cursor(cursor, 1, 2)[-1] if cursor else None
    games = await GamesRepository(ctx.db).newest(limit + 1, before, author_id=user.id)
    return await _page(ctx, games, limit, user, base_url, popular=False)


async def _page(
    ctx: AppContext,
    games: list[GameInDB],
    limit: int,
    user: UserInDB | None,
    base_url: str,
    *,
    popular: bool,
) -> GamePage:
    next_cursor = None
    if len(games) > limit:
        games = games[:limit]
        last = games[-1]
        next_cursor = (
            encode_cursor(last.likes_count, last.rank) if popular else encode_cursor(last.rank)
        )
    return GamePage(items=await shape(ctx, games, user, base_url), next_cursor=next_cursor)


async def set_like(ctx: AppContext, game_id: str, user: UserInDB, liked: bool) -> LikeState:
    game = await get_game(ctx, game_id)
    repo = GamesRepository(ctx.db)
    if liked:
        count = await repo.like(game_id, user.id)
        if count is not None and game.author_id != user.id:
            await notify_liked(ctx, game, user)
    else:
        count = await repo.unlike(game_id, user.id)
    if count is None:  # nothing changed: report the stored count
        count = await repo.likes_count(game_id)
    return LikeState(liked=liked, likes_count=count)


async def delete_game(ctx: AppContext, game_id: str, user: UserInDB) -> None:
    game = await get_game(ctx, game_id)
    if game.author_id != user.id:
        raise Forbidden("only the game's author can delete it")
    await GamesRepository(ctx.db).delete(game_id)
    for name in (n for n in (game.image_name, game.card_name) if n):
        try:
            await ctx.store.delete(name)
        except Exception:  # noqa: BLE001 - the game is gone; a stray image is only logged
            log.warning("could not delete image %s of game %s", name, game_id)


# At most this many marked games are recounted at start-up: a crash leaves a handful, so this
# bounds the work without scanning the games collection at every boot.
STARTUP_REPAIR_LIMIT = 1000


async def repair_likes(
    db: Database, *, all_games: bool = False, limit: int | None = None
) -> LikesRepair:
    """Recount `likes_count` from the likes: for the games a crash may have left stale (those
    with a like op token left behind), or with `all_games` for every game."""
    repo = GamesRepository(db)
    result = LikesRepair(scope="all" if all_games else "pending")
    if not all_games:
        for game_id in await repo.games_with_pending_likes(limit):
            _add(result, await repo.recount_likes(game_id))
        return result
    # One pass over the likes finds the games that disagree; only those are recounted (the
    # recount re-checks each one, so likes arriving meanwhile are not mistaken for drift).
    counted = await repo.likes_per_game()
    async for game_id, stored, pending in repo.all_like_counters():
        if stored == counted.get(game_id, 0) and not pending:
            result.checked += 1
        else:
            _add(result, await repo.recount_likes(game_id))
    return result


def _add(result: LikesRepair, recount: LikesRecount | None) -> None:
    if recount is None:  # the game was deleted meanwhile
        return
    result.checked += 1
    result.fixed += recount.fixed
    result.unsettled += not recount.settled


async def _repair_likes_at_startup(db: Database) -> None:
    try:
        result = await repair_likes(db, limit=STARTUP_REPAIR_LIMIT)
    except Exception:  # noqa: BLE001 - a failed repair must not stop the service; it is retried
        log.warning("start-up likes repair failed; run `paletai db repair likes`", exc_info=True)
        return
    if result.checked:
        log.info(
            "likes repair: %d games checked, %d fixed, %d left for later",
            result.checked,
            result.fixed,
            result.unsettled,
        )


@contextlib.asynccontextmanager
async def likes_repaired_in_background(ctx: AppContext) -> AsyncIterator[None]:
    """While the app runs: repair, in the background, the counters a crash left stale."""
    task = asyncio.create_task(_repair_likes_at_startup(ctx.db))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

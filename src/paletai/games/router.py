from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import HTMLResponse
from pydantic import StringConstraints, WithJsonSchema

from paletai.core.deps import CtxDep, CurrentUser, DbDep, OptionalUser, base_url
from paletai.core.errors import NotFound, error_responses
from paletai.games import service
from paletai.games.repository import GamesRepository
from paletai.games.schemas import (
    FeedSort,
    GameCreate,
    GameId,
    GamePage,
    GamePublic,
    GameRemix,
    LikeState,
)
from paletai.generation.browser import PLAY_CSP
from paletai.jobs.schemas import TaskAccepted

router = APIRouter(tags=["games"])

Limit = Annotated[int, Query(ge=1, le=50, description="items per page")]
_CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"
# "format: cursor" is not a standard format: it names the opaque token, so that generators (the
# fuzz test) can be given real ones.
CursorText = Annotated[
    str,
    StringConstraints(max_length=64, pattern=_CURSOR_PATTERN),
    WithJsonSchema(
        {"type": "string", "maxLength": 64, "pattern": _CURSOR_PATTERN, "format": "cursor"}
    ),
]
Cursor = Annotated[
    CursorText | None, Query(description="next_cursor from the previous page, unchanged")
]

PLAY_HEADERS = {
    "Content-Security-Policy": PLAY_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-site",
    "Cache-Control": "public, max-age=300",
}


def task_accepted(request: Request, task_id: str) -> TaskAccepted:
    return TaskAccepted(
        task_id=task_id, status="queued", status_url=f"{base_url(request)}/tasks/{task_id}"
    )


@router.post(
    "/games",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskAccepted,
    responses=error_responses(401, 422, 429),
)
async def create_game(
    body: GameCreate, request: Request, response: Response, user: CurrentUser, ctx: CtxDep
) -> TaskAccepted:
    """Queue a game for generation; poll `status_url` until it succeeds or fails."""
    task = await service.queue_game(ctx, user, body.prompt)
    response.headers["Location"] = f"/tasks/{task.id}"
    return task_accepted(request, task.id)


@router.get("/games/feed", response_model=GamePage, responses=error_responses(401, 422))
async def feed(
    request: Request,
    ctx: CtxDep,
    user: OptionalUser,
    sort: FeedSort = "newest",
    limit: Limit = 20,
    cursor: Cursor = None,
) -> GamePage:
    """The public feed, newest first or most liked first, with cursor pagination."""
    return await service.feed(ctx, sort, limit, cursor, user, base_url(request))


@router.get("/games/{game_id}", response_model=GamePublic, responses=error_responses(401, 404, 422))
async def get_game(
    game_id: GameId, request: Request, ctx: CtxDep, user: OptionalUser
) -> GamePublic:
    game = await service.get_game(ctx, game_id)
    return (await service.shape(ctx, [game], user, base_url(request)))[0]


@router.get(
    "/games/{game_id}/play",
    response_class=HTMLResponse,
    responses={
        200: {"content": {"text/html": {}}, "description": "the game, sandboxed"},
        **error_responses(404, 422),
    },
)
async def play_game(game_id: GameId, db: DbDep) -> HTMLResponse:
    """The game's HTML, served with a CSP sandbox so it never runs with the API's origin."""
    html = await GamesRepository(db).get_html(game_id)
    if html is None:
        raise NotFound(f"no game with id {game_id!r}")
    return HTMLResponse(html, headers=PLAY_HEADERS)


@router.post(
    "/games/{game_id}/remix",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskAccepted,
    responses=error_responses(401, 404, 422, 429),
)
async def remix_game(
    game_id: GameId, body: GameRemix, request: Request, user: CurrentUser, ctx: CtxDep
) -> TaskAccepted:
    """Make a new game from this one's code and a new prompt (records `parent_id`)."""
    parent = await service.get_game(ctx, game_id)
    task = await service.queue_game(ctx, user, body.prompt, parent=parent)
    return task_accepted(request, task.id)


@router.post(
    "/games/{game_id}/like", response_model=LikeState, responses=error_responses(401, 404, 422)
)
async def like(game_id: GameId, user: CurrentUser, ctx: CtxDep) -> LikeState:
    """Like a game (idempotent)."""
    return await service.set_like(ctx, game_id, user, True)


@router.delete(
    "/games/{game_id}/like", response_model=LikeState, responses=error_responses(401, 404, 422)
)
async def unlike(game_id: GameId, user: CurrentUser, ctx: CtxDep) -> LikeState:
    """Remove your like (idempotent)."""
    return await service.set_like(ctx, game_id, user, False)


@router.delete(
    "/games/{game_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 422),
)
async def delete_game(game_id: GameId, user: CurrentUser, ctx: CtxDep) -> Response:
    """Delete one of your games, with its likes and cover image."""
    await service.delete_game(ctx, game_id, user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/users/me/games",
    response_model=GamePage,
    tags=["users"],
    responses=error_responses(401, 422),
)
async def my_games(
    request: Request, user: CurrentUser, ctx: CtxDep, limit: Limit = 20, cursor: Cursor = None
) -> GamePage:
    """Your games, newest first."""
    return await service.my_games(ctx, user, limit, cursor, base_url(request))

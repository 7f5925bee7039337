from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import HTMLResponse

from paletai.core.deps import CtxDep, CurrentUser, DbDep, OptionalUser, base_url
from paletai.core.errors import NotFound
from paletai.games import service
from paletai.games.repository import GamesRepository
from paletai.games.schemas import FeedSort, GameCreate, GamePage, GamePublic, GameRemix, LikeState
from paletai.generation.browser import PLAY_CSP
from paletai.jobs.schemas import TaskAccepted

router = APIRouter(tags=["games"])

GameId = Annotated[str, Path(min_length=1, max_length=64, description="a game id")]
Limit = Annotated[int, Query(ge=1, le=50, description="items per page")]
Cursor = Annotated[
    str | None, Query(max_length=200, description="next_cursor from the previous page")
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
    responses={429: {"description": "daily prompt limit reached (see Retry-After)"}},
)
async def create_game(
    body: GameCreate, request: Request, response: Response, user: CurrentUser, ctx: CtxDep
) -> TaskAccepted:
    """Queue a game for generation; poll `status_url` until it succeeds or fails."""
    task = await service.queue_game(ctx, user, body.prompt)
    response.headers["Location"] = f"/tasks/{task.id}"
    return task_accepted(request, task.id)


@router.get("/games/feed", response_model=GamePage)
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


@router.get("/games/{game_id}", response_model=GamePublic)
async def get_game(
    game_id: GameId, request: Request, ctx: CtxDep, user: OptionalUser
) -> GamePublic:
    game = await service.get_game(ctx, game_id)
    return (await service.shape(ctx, [game], user, base_url(request)))[0]


@router.get(
    "/games/{game_id}/play",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}, "description": "the game, sandboxed"}},
)
async def play_game(game_id: GameId, db: DbDep) -> HTMLResponse:
    """The game's HTML, served with a CSP sandbox so it never runs with the API's origin."""
    html = await GamesRepository(db).get_html(game_id)
    if html is None:
        raise NotFound(f"no game with id {game_id!r}")
    return HTMLResponse(html, headers=PLAY_HEADERS)


@router.post(
    "/games/{game_id}/remix", status_code=status.HTTP_202_ACCEPTED, response_model=TaskAccepted
)
async def remix_game(
    game_id: GameId, body: GameRemix, request: Request, user: CurrentUser, ctx: CtxDep
) -> TaskAccepted:
    """Make a new game from this one's code and a new prompt (records `parent_id`)."""
    parent = await service.get_game(ctx, game_id)
    task = await service.queue_game(ctx, user, body.prompt, parent=parent)
    return task_accepted(request, task.id)


@router.post("/games/{game_id}/like", response_model=LikeState)
async def like(game_id: GameId, user: CurrentUser, ctx: CtxDep) -> LikeState:
    """Like a game (idempotent)."""
    return await service.set_like(ctx, game_id, user, True)


@router.delete("/games/{game_id}/like", response_model=LikeState)
async def unlike(game_id: GameId, user: CurrentUser, ctx: CtxDep) -> LikeState:
    """Remove your like (idempotent)."""
    return await service.set_like(ctx, game_id, user, False)


@router.delete("/games/{game_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_game(game_id: GameId, user: CurrentUser, ctx: CtxDep) -> Response:
    """Delete one of your games, with its likes and cover image."""
    await service.delete_game(ctx, game_id, user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/users/me/games", response_model=GamePage, tags=["users"])
async def my_games(
    request: Request, user: CurrentUser, ctx: CtxDep, limit: Limit = 20, cursor: Cursor = None
) -> GamePage:
    """Your games, newest first."""
    return await service.my_games(ctx, user, limit, cursor, base_url(request))

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, Field, StrictStr

from paletai.core.schemas import RequestModel, ResponseModel

PROMPT_MAX = 2000

# A game id in a path (the API's and the console's share page).
GameId = Annotated[str, Path(min_length=1, max_length=64, description="a game id")]


class GameCreate(RequestModel):
    prompt: StrictStr = Field(
        min_length=1, max_length=PROMPT_MAX, examples=["Create a simple snake game"]
    )


class GameRemix(RequestModel):
    prompt: StrictStr = Field(
        min_length=1, max_length=PROMPT_MAX, examples=["Make it faster, with a neon theme"]
    )


class GameInDB(BaseModel):
    """A `games` document (the HTML lives in `game_html`, so listings stay small)."""

    id: str
    title: str
    description: str
    controls: str = ""
    prompt: str
    author_id: str
    author_username: str
    image_name: str | None = None
    image_url: str | None = None
    card_name: str | None = None  # the first cover, kept after a screenshot replaced it
    likes_count: int = 0
    provider: str
    model: str
    usage: dict[str, int] = {}
    parent_id: str | None = None
    task_id: str | None = None
    rank: int
    html_size: int = 0
    created_at: dt.datetime


class Author(ResponseModel):
    id: str
    username: str


class GamePublic(ResponseModel):
    id: str
    title: str
    description: str
    controls: str
    prompt: str
    author: Author
    image_url: str | None
    play_url: str
    likes_count: int
    liked_by_me: bool
    provider: str
    model: str
    parent_id: str | None
    created_at: dt.datetime


class GamePage(ResponseModel):
    items: list[GamePublic]
    next_cursor: str | None


class LikeState(ResponseModel):
    liked: bool
    likes_count: int


FeedSort = Literal["newest", "popular"]


class LikesRepair(BaseModel):
    """What a reconcile of `likes_count` did (`paletai db repair likes --json` writes it)."""

    scope: Literal["pending", "all"]
    checked: int = 0
    fixed: int = 0
    unsettled: int = 0

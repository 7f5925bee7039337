from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict

from paletai.core.schemas import ResponseModel


class UserInDB(BaseModel):
    """A `users` document."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    email: str
    username: str
    password_hash: str
    created_at: dt.datetime


class UserPublic(ResponseModel):
    id: str
    email: str
    username: str
    created_at: dt.datetime


class UserMe(UserPublic):
    daily_prompt_limit: int
    prompts_used_today: int
    prompts_remaining_today: int

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel

from paletai.core.schemas import ResponseModel

TaskStatus = Literal["queued", "running", "succeeded", "failed"]
# The pipeline's stages, in order; a task shows the one it is in (or ended in).
STAGES = ("queued", "generating", "validating", "cover", "publishing", "succeeded", "failed")


class Task(BaseModel):
    """A `tasks` document: one generation job."""

    id: str
    kind: Literal["generate", "remix"]
    user_id: str
    prompt: str
    parent_id: str | None = None
    game_id: str
    status: TaskStatus
    stage: str
    progress: dict[str, Any] = {}
    attempts: int = 0
    max_attempts: int
    lease_owner: str | None = None
    lease_until: int | None = None  # epoch ms
    not_before: int = 0  # epoch ms
    error: str | None = None
    quota_day: str | None = None
    timings: dict[str, float] = {}
    created_at: dt.datetime
    updated_at: dt.datetime
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None


class TaskAccepted(ResponseModel):
    task_id: str
    status: TaskStatus
    status_url: str


class TaskPublic(ResponseModel):
    task_id: str
    status: TaskStatus
    stage: str
    progress: dict[str, Any] = {}
    attempts: int
    game_id: str | None = None
    game_url: str | None = None
    error: str | None = None
    created_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None = None

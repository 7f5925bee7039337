from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from paletai.core.deps import CurrentUser, DbDep, base_url
from paletai.core.errors import NotFound, error_responses
from paletai.jobs.repository import TasksRepository
from paletai.jobs.schemas import TaskPublic

router = APIRouter(tags=["games"])


@router.get("/tasks/{task_id}", response_model=TaskPublic, responses=error_responses(401, 404, 422))
async def get_task(
    task_id: Annotated[str, Path(min_length=1, max_length=64)],
    request: Request,
    user: CurrentUser,
    db: DbDep,
) -> TaskPublic:
    """Where a generation is: queued, running (with its stage), succeeded (with the game) or
    failed (with a message)."""
    task = await TasksRepository(db).get(task_id)
    if task is None or task.user_id != user.id:
        raise NotFound(f"no task with id {task_id!r}")
    done = task.status == "succeeded"
    return TaskPublic(
        task_id=task.id,
        status=task.status,
        stage=task.stage,
        progress=task.progress,
        attempts=task.attempts,
        game_id=task.game_id if done else None,
        game_url=f"{base_url(request)}/games/{task.game_id}" if done else None,
        error=task.error,
        created_at=task.created_at,
        updated_at=task.updated_at,
        finished_at=task.finished_at,
    )

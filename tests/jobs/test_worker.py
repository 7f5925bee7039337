"""The queue on its own: a WorkerPool runs tasks with whatever handler it is given (no game)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from paletai.config import Settings
from paletai.db.client import Database
from paletai.db.indexes import ensure_indexes
from paletai.jobs.repository import TasksRepository
from paletai.jobs.schemas import Task
from paletai.jobs.worker import Report, TaskFailed, WorkerPool


@dataclass
class RecordingHandler:
    """Runs `outcome` for each task and notes what the pool told it afterwards."""

    tasks: TasksRepository
    outcome: Callable[[Task], str]
    succeeded_with: list[tuple[str, str, str]] = field(default_factory=list)
    failed_with: list[tuple[str, str, str]] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, task: Task, report: Report) -> str:
        await report("first", {"step": 1})
        await report("second", {"step": 2})
        return self.outcome(task)

    async def succeeded(self, task: Task, result: str, seconds: float) -> None:
        stored = await self.tasks.get(task.id)
        assert stored is not None
        # Told only once the task is recorded as done (a push must not beat the poller).
        self.succeeded_with.append((task.id, result, stored.status))
        self.done.set()

    async def failed(self, task: Task, message: str, reason: str, seconds: float) -> None:
        stored = await self.tasks.get(task.id)
        assert stored is not None
        self.failed_with.append((message, reason, stored.status))
        self.done.set()


async def _run_one(
    db: Database, settings: Settings, outcome: Callable[[Task], str], max_attempts: int = 3
) -> tuple[RecordingHandler, Task, WorkerPool[str]]:
    await ensure_indexes(db)
    tasks = TasksRepository(db)
    handler = RecordingHandler(tasks, outcome)
    pool = WorkerPool(tasks, settings, handler=handler, concurrency=1)
    queued = await tasks.create(user_id="u1", prompt="anything", max_attempts=max_attempts)
    await pool.start()
    try:
        await asyncio.wait_for(handler.done.wait(), 30)
    finally:
        await pool.stop(grace_seconds=5)
    finished = await tasks.get(queued.id)
    assert finished is not None
    return handler, finished, pool


async def test_a_task_runs_with_the_given_handler(db: Database, settings: Settings) -> None:
    handler, task, pool = await _run_one(db, settings, lambda task: f"made {task.prompt}")
    assert task.status == "succeeded"
    assert handler.succeeded_with == [(task.id, "made anything", "succeeded")]
    assert handler.failed_with == []
    assert task.attempts == 1
    # The stages the handler reported are timed on the task.
    assert {"claimed_ms", "first_ms", "second_ms", "total_ms"} <= set(task.timings)
    assert pool.processed == 1


async def test_task_failed_fails_at_once_and_tells_the_handler(
    db: Database, settings: Settings
) -> None:
    def refuse(task: Task) -> str:
        raise TaskFailed("this prompt cannot be done", "Refused")

    handler, task, pool = await _run_one(db, settings, refuse)
    assert task.status == "failed"
    assert task.error == "this prompt cannot be done"
    assert task.attempts == 1  # not retried
    assert handler.failed_with == [("this prompt cannot be done", "Refused", "failed")]
    assert handler.succeeded_with == []
    assert pool.processed == 1


async def test_an_unexpected_error_fails_after_the_last_attempt(
    db: Database, settings: Settings
) -> None:
    def crash(task: Task) -> str:
        raise RuntimeError("a bug")

    handler, task, _ = await _run_one(db, settings, crash, max_attempts=1)
    assert task.status == "failed"
    assert handler.failed_with == [
        ("internal error after 1 attempts (RuntimeError)", "internal", "failed")
    ]

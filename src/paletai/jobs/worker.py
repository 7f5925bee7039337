"""Workers: claim tasks from MongoDB, hold a renewed lease while a handler runs them.

A generic queue: it knows no domain. The handler (games/flows.py for generation) is registered
where the app and `paletai worker` are wired.

In-process (the API's lifespan starts a pool) or as `paletai worker` processes; any number of
pools in any number of processes share one database safely.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar

from pymongo.errors import ConnectionFailure

from paletai.config import Settings
from paletai.core.maintenance import MaintenanceState
from paletai.jobs.repository import TasksRepository
from paletai.jobs.schemas import Task

log = logging.getLogger(__name__)

# report(stage, info): records the stage on the task and renews the lease (raises LeaseLost).
Report = Callable[[str, dict[str, Any]], Awaitable[None]]
ResultT = TypeVar("ResultT")


class TaskFailed(Exception):
    """The task cannot succeed: fail it now, without retrying. `message` is shown to its user;
    `reason` is a short label for telemetry."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


class TaskHandler(Protocol[ResultT]):
    """What a worker runs. Registered where the app and `paletai worker` are wired."""

    async def run(self, task: Task, report: Report) -> ResultT:
        """Do the task (idempotently: a retried task runs again). Raise TaskFailed to fail it;
        any other exception is retried with backoff up to the task's attempts."""
        ...

    async def succeeded(self, task: Task, result: ResultT, seconds: float) -> None:
        """After the task is recorded as succeeded."""
        ...

    async def failed(self, task: Task, message: str, reason: str, seconds: float) -> None:
        """After the task is recorded as finally failed (not for a dropped lease)."""
        ...


class LeaseLost(Exception):
    """Another worker took the task over (our lease ran out)."""


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class WorkerPool(Generic[ResultT]):
    """`concurrency` loops that claim tasks and run them with `handler`; while `maintenance` is
    on they claim nothing new."""

    def __init__(
        self,
        tasks: TasksRepository,
        settings: Settings,
        *,
        handler: TaskHandler[ResultT],
        maintenance: MaintenanceState | None = None,
        concurrency: int | None = None,
    ) -> None:
        self.settings = settings
        self.handler = handler
        self.maintenance = maintenance
        self.concurrency = concurrency or settings.WORKER_CONCURRENCY
        self.identity = worker_identity()
        self.tasks = tasks
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._running: dict[str, asyncio.Task[Any]] = {}
        self.processed = 0

    def wake(self) -> None:
        self._wake.set()

    @property
    def busy(self) -> int:
        return len(self._running)

    async def start(self) -> None:
        # A handler may prepare resources first (warm a process pool): optional `start()`.
        prepare = getattr(self.handler, "start", None)
        if prepare is not None:
            await prepare()
        for i in range(self.concurrency):
            self._loops.append(asyncio.create_task(self._loop(i), name=f"paletai-worker-{i}"))
        log.info("worker pool %s started with concurrency %d", self.identity, self.concurrency)

    async def stop(self, grace_seconds: float | None = None) -> None:
        """Finish what is running within the grace period; release the rest to the queue."""
        if grace_seconds is None:
            grace_seconds = self.settings.WORKER_SHUTDOWN_GRACE_SECONDS
        self._stopping.set()
        self._wake.set()
        if self._loops:
            _, pending = await asyncio.wait(self._loops, timeout=grace_seconds)
            for loop in pending:
                loop.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self._loops.clear()
        # A handler may hold resources (a browser, a process pool): optional `aclose()`.
        close = getattr(self.handler, "aclose", None)
        if close is not None:
            await close()

    async def _loop(self, index: int) -> None:
        owner = f"{self.identity}/{index}"
        maintenance = self.maintenance
        while not self._stopping.is_set():
            try:
                # In maintenance (a database move) take no new work: what runs finishes, and
                # the queue moves with the data to the new side, where its workers take it up.
                if maintenance is not None and await maintenance.is_on():
                    task = None
                else:
                    task = await self.tasks.claim_next(owner, self.settings.TASK_LEASE_SECONDS)
            except ConnectionFailure:
                # An outage: the client's OutageLog says so once; keep polling quietly.
                task = None
            except Exception:  # noqa: BLE001 - keep polling
                log.warning("could not claim a task; retrying", exc_info=True)
                task = None
            if task is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.WORKER_POLL_SECONDS)
                continue
            # Another idle loop may find more work too.
            self._wake.set()
            await self._execute(task, owner)

    async def _execute(self, task: Task, owner: str) -> None:
        if task.attempts > task.max_attempts:
            await self.tasks.fail(
                task.id,
                owner,
                f"gave up after {task.max_attempts} attempts (the worker stopped each time)",
            )
            return
        started = time.monotonic()
        lease = self.settings.TASK_LEASE_SECONDS
        lost = asyncio.Event()
        marks: list[tuple[str, float]] = [("claimed", started)]

        async def report(stage: str, info: dict[str, Any]) -> None:
            if stage != marks[-1][0]:
                marks.append((stage, time.monotonic()))
            if not await self.tasks.heartbeat(task.id, owner, lease, stage=stage, progress=info):
                lost.set()
                raise LeaseLost(task.id)

        async def keep_lease() -> None:
            while True:
                await asyncio.sleep(lease / 3)
                if not await self.tasks.heartbeat(task.id, owner, lease):
                    lost.set()
                    work.cancel()
                    return

        work = asyncio.create_task(self.handler.run(task, report))
        self._running[task.id] = work
        keeper = asyncio.create_task(keep_lease())
        try:
            result = await work
        except asyncio.CancelledError:
            if lost.is_set():
                log.warning("task %s: lease lost to another worker; dropped", task.id)
                return
            # Shutting down: hand the task back, and this attempt does not count.
            await self.tasks.release(task.id, owner)
            await self.tasks.undo_attempt(task.id)
            raise
        except LeaseLost:
            log.warning("task %s: lease lost to another worker; dropped", task.id)
        except TaskFailed as exc:
            await self._failed(task, owner, exc.message, exc.reason, started)
        except Exception as exc:  # noqa: BLE001 - a bug or an outage: retry, then fail
            log.exception("task %s attempt %d failed unexpectedly", task.id, task.attempts)
            if task.attempts < task.max_attempts:
                await self.tasks.release(task.id, owner, delay_seconds=2.0**task.attempts)
            else:
                await self._failed(
                    task,
                    owner,
                    f"internal error after {task.attempts} attempts ({type(exc).__name__})",
                    "internal",
                    started,
                )
        else:
            marks.append(("done", time.monotonic()))
            timings = {
                f"{stage}_ms": round((marks[i + 1][1] - at) * 1000, 1)
                for i, (stage, at) in enumerate(marks[:-1])
            }
            timings["total_ms"] = round((marks[-1][1] - started) * 1000, 1)
            await self.tasks.succeed(task.id, owner, timings)
            self.processed += 1
            await self.handler.succeeded(task, result, time.monotonic() - started)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            self._running.pop(task.id, None)

    async def _failed(
        self, task: Task, owner: str, message: str, reason: str, started: float
    ) -> None:
        if not await self.tasks.fail(task.id, owner, message):
            return
        self.processed += 1
        await self.handler.failed(task, message, reason, time.monotonic() - started)

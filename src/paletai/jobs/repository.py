"""The job queue in MongoDB: atomic claims with leases, so any number of workers in any number
of processes share it and a crashed worker's task is claimed again when its lease runs out.

Time fields used in filters (`not_before`, `lease_until`) are epoch milliseconds (integers):
ranges over integers are fast on every MongoDB flavour, the embedded stand-in included.
"""

from __future__ import annotations

import time
from typing import Any

from pymongo import ReturnDocument

from paletai.core.timeutil import as_utc, utcnow
from paletai.db.client import Database
from paletai.db.ids import new_id
from paletai.db.updates import stamp
from paletai.jobs.schemas import Task


def now_ms() -> int:
    return int(time.time() * 1000)


def _to_task(doc: dict[str, Any]) -> Task:
    data = dict(doc)
    data["id"] = data.pop("_id")
    for key in ("created_at", "updated_at", "started_at", "finished_at"):
        if data.get(key) is not None:
            data[key] = as_utc(data[key])
    return Task.model_validate(data)


def new_task_document(
    *,
    user_id: str,
    prompt: str,
    max_attempts: int,
    kind: str = "generate",
    parent_id: str | None = None,
    quota_day: str | None = None,
) -> dict[str, Any]:
    """A queued `tasks` document, as POST /games creates it."""
    now = utcnow()
    doc: dict[str, Any] = {
        "_id": new_id(),
        "kind": kind,
        "user_id": user_id,
        "prompt": prompt,
        "parent_id": parent_id,
        # Fixed now, so every retry of this task publishes the same game (at most one).
        "game_id": new_id(),
        "status": "queued",
        "stage": "queued",
        "progress": {},
        "attempts": 0,
        "max_attempts": max_attempts,
        "lease_owner": None,
        "lease_until": None,
        "not_before": 0,
        "error": None,
        "quota_day": quota_day,
        "created_at": now,
        "updated_at": now,
        "started_at": None,
        "finished_at": None,
    }
    return doc


class TasksRepository:
    def __init__(self, db: Database) -> None:
        self.collection = db["tasks"]

    async def create(
        self,
        *,
        user_id: str,
        prompt: str,
        max_attempts: int,
        kind: str = "generate",
        parent_id: str | None = None,
        quota_day: str | None = None,
    ) -> Task:
        doc = new_task_document(
            user_id=user_id,
            prompt=prompt,
            max_attempts=max_attempts,
            kind=kind,
            parent_id=parent_id,
            quota_day=quota_day,
        )
        await self.collection.insert_one(doc)
        return _to_task(doc)

    async def get(self, task_id: str) -> Task | None:
        doc = await self.collection.find_one({"_id": task_id})
        return _to_task(doc) if doc else None

    def _claim_update(self, owner: str, lease_seconds: float) -> dict[str, Any]:
        return {
            "$set": {
                "status": "running",
                "lease_owner": owner,
                "lease_until": now_ms() + int(lease_seconds * 1000),
            },
            "$inc": {"attempts": 1},
            **stamp("started_at", "updated_at"),
        }

    async def claim_next(self, owner: str, lease_seconds: float) -> Task | None:
        """Claim the oldest runnable queued task, else one whose lease expired."""
        ts = now_ms()
        # Two simple queries rather than one $or: each one is a single indexed range.
        for query, order in (
            ({"status": "queued", "not_before": {"$lte": ts}}, "not_before"),
            ({"status": "running", "lease_until": {"$lt": ts}}, "lease_until"),
        ):
            doc = await self.collection.find_one_and_update(
                query,
                self._claim_update(owner, lease_seconds),
                sort=[(order, 1)],
                return_document=ReturnDocument.AFTER,
            )
            if doc is not None:
                return _to_task(doc)
        return None

    async def heartbeat(
        self,
        task_id: str,
        owner: str,
        lease_seconds: float,
        *,
        stage: str | None = None,
        progress: dict[str, Any] | None = None,
    ) -> bool:
        """Renew the lease (and record the stage); False when the lease was lost."""
        fields: dict[str, Any] = {"lease_until": now_ms() + int(lease_seconds * 1000)}
        if stage is not None:
            fields["stage"] = stage
        if progress is not None:
            fields["progress"] = progress
        result = await self.collection.update_one(
            {"_id": task_id, "lease_owner": owner, "status": "running"},
            {"$set": fields, **stamp("updated_at")},
        )
        return result.matched_count == 1

    async def succeed(
        self, task_id: str, owner: str, timings: dict[str, float] | None = None
    ) -> None:
        """Mark succeeded; `timings` = milliseconds spent in each stage (for operators)."""
        # Not conditional on the lease: the game is published, so the task did succeed.
        await self.collection.update_one(
            {"_id": task_id, "status": {"$ne": "succeeded"}},
            {
                "$set": {
                    "status": "succeeded",
                    "stage": "succeeded",
                    "lease_owner": None,
                    "lease_until": None,
                    "error": None,
                    "finished_by": owner,
                    "timings": timings or {},
                },
                **stamp("finished_at", "updated_at"),
            },
        )

    async def fail(self, task_id: str, owner: str | None, message: str) -> bool:
        """Mark failed (only while this owner holds it, when given); True if it changed."""
        query: dict[str, Any] = {"_id": task_id, "status": {"$in": ["queued", "running"]}}
        if owner is not None:
            query["lease_owner"] = owner
        result = await self.collection.update_one(
            query,
            {
                "$set": {
                    "status": "failed",
                    "stage": "failed",
                    "lease_owner": None,
                    "lease_until": None,
                    "error": message,
                },
                **stamp("finished_at", "updated_at"),
            },
        )
        return result.modified_count == 1

    async def release(self, task_id: str, owner: str, delay_seconds: float = 0.0) -> None:
        """Put a task back in the queue (shutdown, or a retry after an unexpected error)."""
        await self.collection.update_one(
            {"_id": task_id, "lease_owner": owner, "status": "running"},
            {
                "$set": {
                    "status": "queued",
                    "stage": "queued",
                    "lease_owner": None,
                    "lease_until": None,
                    "not_before": now_ms() + int(delay_seconds * 1000),
                },
                **stamp("updated_at"),
            },
        )

    async def undo_attempt(self, task_id: str) -> None:
        """A release at shutdown is not a failed attempt."""
        await self.collection.update_one(
            {"_id": task_id, "attempts": {"$gt": 0}}, {"$inc": {"attempts": -1}}
        )

    async def queue_depth(self) -> int:
        return await self.collection.count_documents({"status": "queued"})

"""A concurrent writer for the sync tests: inserts, updates and deletes at a steady rate."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

from bson import ObjectId
from pymongo.errors import PyMongoError

from paletai.db.client import Database
from tests.ops.conftest import game_doc


class Writer:
    """~`rate` operations per second on `games` and `users`, tolerant of a server outage."""

    def __init__(
        self,
        db: Database,
        *,
        rate: float = 200.0,
        seed: int = 7,
        allowed: Callable[[], bool] | None = None,
    ) -> None:
        self.db = db
        # The service's side of a write stop: while this says no, writes are refused (503).
        self.allowed = allowed or (lambda: True)
        self.last_write_at = 0.0
        self.rate = rate
        self.random = random.Random(seed)
        self.ids: list[ObjectId] = []
        self.ops = {"insert": 0, "update": 0, "delete": 0, "failed": 0, "refused": 0}
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def load_ids(self) -> None:
        self.ids = [d["_id"] async for d in self.db.games.find({}, {"_id": 1})]

    def start(self) -> None:
        self.task = asyncio.create_task(self.run())

    async def finish(self) -> dict[str, int]:
        self.stop.set()
        assert self.task is not None
        await self.task
        return self.ops

    async def one(self) -> None:
        roll = self.random.random()
        if roll < 0.4 or len(self.ids) < 10:
            doc = game_doc(self.random.randrange(10**6), size=200)
            await self.db.games.insert_one(doc)
            self.ids.append(doc["_id"])
            self.ops["insert"] += 1
        elif roll < 0.85:
            target = self.random.choice(self.ids)
            change: dict[str, Any] = {
                "$set": {"title": f"edited {self.random.random():.6f}"},
                "$inc": {"likes_count": 1},
            }
            await self.db.games.update_one({"_id": target}, change)
            self.ops["update"] += 1
        else:
            target = self.ids.pop(self.random.randrange(len(self.ids)))
            await self.db.games.delete_one({"_id": target})
            self.ops["delete"] += 1
        if self.random.random() < 0.05:
            key = f"user-{self.random.randrange(50)}"
            await self.db.users.update_one(
                {"_id": key}, {"$set": {"seen": self.random.random()}}, upsert=True
            )

    async def run(self) -> None:
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self.stop.is_set():
            try:
                if self.allowed():
                    await self.one()
                    self.last_write_at = time.monotonic()
                else:
                    self.ops["refused"] += 1
            except PyMongoError:
                self.ops["failed"] += 1
                await asyncio.sleep(0.2)
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                next_at = time.monotonic()

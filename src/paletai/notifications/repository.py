from __future__ import annotations

import time

from pymongo.errors import DuplicateKeyError

from paletai.db.client import Database
from paletai.db.updates import stamp


class SubscriptionsRepository:
    def __init__(self, db: Database) -> None:
        self.subscriptions = db["subscriptions"]
        self.like_sends = db["like_notifications"]

    async def subscribe(self, user_id: str, player_id: str) -> None:
        # One device belongs to the user who last subscribed it.
        await self.subscriptions.update_one(
            {"_id": player_id},
            {"$set": {"user_id": user_id}, **stamp("updated_at")},
            upsert=True,
        )

    async def unsubscribe(self, user_id: str, player_id: str) -> bool:
        result = await self.subscriptions.delete_one({"_id": player_id, "user_id": user_id})
        return result.deleted_count == 1

    async def delete_for_user(self, user_id: str) -> None:
        await self.subscriptions.delete_many({"user_id": user_id})

    async def player_ids(self, user_id: str) -> list[str]:
        docs = await self.subscriptions.find({"user_id": user_id}, {"_id": 1}).to_list()
        return [str(d["_id"]) for d in docs]

    async def may_send_like(self, game_id: str, every_seconds: int = 3600) -> bool:
        """True at most once per `every_seconds` per game, across all processes."""
        now = int(time.time() * 1000)
        try:
            await self.like_sends.insert_one({"_id": game_id, "sent_ms": now})
            return True
        except DuplicateKeyError:
            pass
        result = await self.like_sends.update_one(
            {"_id": game_id, "sent_ms": {"$lte": now - every_seconds * 1000}},
            {"$set": {"sent_ms": now}},
        )
        return result.modified_count == 1

"""DAILY_PROMPT_LIMIT: prompts per user per UTC day, counted atomically in `prompt_usage`."""

from __future__ import annotations

import datetime as dt

from pymongo.errors import DuplicateKeyError

from paletai.core.errors import TooManyRequests
from paletai.db.client import Database


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def seconds_until_utc_midnight(now: dt.datetime | None = None) -> int:
    now = now or dt.datetime.now(dt.UTC)
    tomorrow = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), dt.UTC)
    return max(1, int((tomorrow - now).total_seconds()))


class PromptQuota:
    def __init__(self, db: Database, limit: int) -> None:
        self.collection = db["prompt_usage"]
        self.limit = limit

    @staticmethod
    def _key(user_id: str, day: dt.date) -> str:
        return f"{user_id}:{day.isoformat()}"

    async def used_today(self, user_id: str) -> int:
        doc = await self.collection.find_one({"_id": self._key(user_id, utc_today())})
        return int(doc["count"]) if doc else 0

    async def take(self, user_id: str) -> str:
        """Count one prompt (returns the UTC day it counts for), or raise 429 at the limit."""
        day = utc_today()
        key = self._key(user_id, day)
        message = (
            f"daily prompt limit of {self.limit} reached; it resets at 00:00 UTC"
            if self.limit
            else "creating games is disabled (DAILY_PROMPT_LIMIT=0)"
        )
        if self.limit <= 0:
            raise TooManyRequests(message, seconds_until_utc_midnight())
        expires = dt.datetime.combine(day + dt.timedelta(days=2), dt.time(), dt.UTC)
        try:
            # The filter only matches below the limit; at the limit the upsert collides on _id.
            await self.collection.update_one(
                {"_id": key, "count": {"$lt": self.limit}},
                {
                    "$inc": {"count": 1},
                    "$setOnInsert": {
                        "user_id": user_id,
                        "day": day.isoformat(),
                        "expires_at": expires,
                    },
                },
                upsert=True,
            )
        except DuplicateKeyError:
            raise TooManyRequests(message, seconds_until_utc_midnight()) from None
        return day.isoformat()

    async def give_back(self, user_id: str, day: str) -> None:
        """Return a prompt whose game could not be made."""
        await self.collection.update_one(
            {"_id": f"{user_id}:{day}", "count": {"$gt": 0}}, {"$inc": {"count": -1}}
        )

    async def forget(self, user_id: str) -> None:
        """Drop a user's usage records (their account is being deleted)."""
        await self.collection.delete_many({"user_id": user_id})

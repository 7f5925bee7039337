"""A short-lived per-process cache of users by id, for token authentication.

Every authenticated request needs the user behind its token; a few seconds of caching saves a
database round trip per request. Deleting an account drops its entry here at once; other
processes notice within the TTL.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from paletai.db.client import Database
from paletai.users.repository import UsersRepository
from paletai.users.schemas import UserInDB


class UserCache:
    def __init__(self, ttl_seconds: float = 30.0, max_entries: int = 10_000) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, UserInDB]] = OrderedDict()

    async def get(self, db: Database, user_id: str) -> UserInDB | None:
        now = time.monotonic()
        hit = self._entries.get(user_id)
        if hit is not None and hit[0] > now:
            self._entries.move_to_end(user_id)
            return hit[1]
        user = await UsersRepository(db).get(user_id)
        if user is not None:
            self._entries[user_id] = (now + self.ttl, user)
            self._entries.move_to_end(user_id)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return user

    def invalidate(self, user_id: str) -> None:
        self._entries.pop(user_id, None)

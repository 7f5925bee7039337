"""Login throttling, shared by every worker process through MongoDB.

Each failure is a document with a TTL; too many for one email or one client address within the
window answers 429 until the oldest falls out of the window.
"""

from __future__ import annotations

import datetime as dt
import time

from paletai.config import Settings
from paletai.core.errors import TooManyRequests
from paletai.db.client import Database


class LoginThrottle:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.collection = db["login_failures"]
        self.window_ms = settings.LOGIN_WINDOW_SECONDS * 1000
        self.max_per_email = settings.LOGIN_MAX_FAILURES
        self.max_per_ip = settings.LOGIN_MAX_FAILURES_PER_IP

    @staticmethod
    def _keys(email: str, ip: str) -> tuple[str, str]:
        return f"email:{email.lower()}", f"ip:{ip}"

    async def _retry_after(self, key: str, limit: int, now_ms: int) -> int | None:
        since = now_ms - self.window_ms
        recent = (
            await self.collection.find({"key": key, "at_ms": {"$gte": since}}, {"at_ms": 1})
            .sort("at_ms", -1)
            .limit(limit)
            .to_list()
        )
        if len(recent) < limit:
            return None
        oldest = min(int(doc["at_ms"]) for doc in recent)
        return max(1, (oldest + self.window_ms - now_ms) // 1000 + 1)

    async def check(self, email: str, ip: str) -> None:
        now_ms = int(time.time() * 1000)
        email_key, ip_key = self._keys(email, ip)
        for key, limit, what in (
            (email_key, self.max_per_email, "this account"),
            (ip_key, self.max_per_ip, "your address"),
        ):
            wait = await self._retry_after(key, limit, now_ms)
            if wait is not None:
                raise TooManyRequests(
                    f"too many failed logins for {what}; try again in {wait} s", wait
                )

    async def record_failure(self, email: str, ip: str) -> None:
        now = time.time()
        expires = dt.datetime.fromtimestamp(now + self.window_ms / 1000, dt.UTC)
        docs = [
            {"key": key, "at_ms": int(now * 1000), "expires_at": expires}
            for key in self._keys(email, ip)
        ]
        await self.collection.insert_many(docs)

    async def clear(self, email: str) -> None:
        await self.collection.delete_many({"key": self._keys(email, "")[0]})

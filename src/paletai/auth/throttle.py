"""Login and registration throttles, shared by every worker process through MongoDB.

Each event is a document `{key, at_ms, expires_at}` with a TTL; a limit is "at most N events
for a key within the window". The policy (docs/architecture.md, "Authentication"):

- login failures per (account, client address): strict, 429 even for the right password;
- login failures per client address (any account): strict, 429;
- login failures per account from all addresses: never refused, only slowed down (a growing,
  capped delay), so strangers cannot lock the owner out;
- registrations per client address and in total: strict, 429, counted before any hashing.

Client addresses are bucketed by `address_bucket` (IPv6 by /64).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from paletai.config import Settings
from paletai.core.errors import TooManyRequests
from paletai.core.network import address_bucket
from paletai.db.client import Database
from paletai.db.ids import new_id


class EventWindow:
    """Counts events per key in a sliding window, in one collection."""

    def __init__(self, db: Database, collection: str, window_seconds: int) -> None:
        self.collection = db[collection]
        self.window_ms = window_seconds * 1000

    def _doc(self, key: str, now_ms: int) -> dict[str, Any]:
        expires = dt.datetime.fromtimestamp((now_ms + self.window_ms) / 1000, dt.UTC)
        return {"_id": new_id(), "key": key, "at_ms": now_ms, "expires_at": expires}

    async def recent(self, key: str, limit: int, now_ms: int) -> list[int]:
        """Times (ms) of the latest `limit` events for `key` within the window, newest first."""
        docs = (
            await self.collection.find(
                {"key": key, "at_ms": {"$gte": now_ms - self.window_ms}}, {"at_ms": 1}
            )
            .sort("at_ms", -1)
            .limit(limit)
            .to_list()
        )
        return [int(doc["at_ms"]) for doc in docs]

    async def count(self, key: str, limit: int, now_ms: int) -> int:
        return len(await self.recent(key, limit, now_ms))

    async def retry_after(self, key: str, limit: int, now_ms: int) -> int | None:
        """Seconds until `key` is below `limit` again; None when it is below now."""
        recent = await self.recent(key, limit, now_ms)
        if len(recent) < limit:
            return None
        return max(1, (min(recent) + self.window_ms - now_ms) // 1000 + 1)

    async def record(self, keys: list[str], now_ms: int) -> list[str]:
        docs = [self._doc(key, now_ms) for key in keys]
        await self.collection.insert_many(docs)
        return [str(doc["_id"]) for doc in docs]

    async def forget(self, ids: list[str]) -> None:
        await self.collection.delete_many({"_id": {"$in": ids}})

    async def clear(self, key: str) -> None:
        await self.collection.delete_many({"key": key})


def now_ms() -> int:
    return int(time.time() * 1000)


class LoginThrottle:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.window = EventWindow(db, "login_failures", settings.LOGIN_WINDOW_SECONDS)
        self.max_per_pair = settings.LOGIN_MAX_FAILURES
        self.max_per_ip = settings.LOGIN_MAX_FAILURES_PER_IP
        self.slowdown_after = settings.LOGIN_ACCOUNT_SLOWDOWN_AFTER
        self.max_delay = settings.LOGIN_ACCOUNT_MAX_DELAY_SECONDS

    @staticmethod
    def _keys(email: str, ip: str) -> tuple[str, str, str]:
        account, bucket = email.lower(), address_bucket(ip)
        return f"pair:{account}|{bucket}", f"ip:{bucket}", f"email:{account}"

    async def check(self, email: str, ip: str) -> float:
        """Raise 429 past a strict limit; otherwise the delay (s) to apply before verifying."""
        at = now_ms()
        pair_key, ip_key, account_key = self._keys(email, ip)
        for key, limit, what in (
            (pair_key, self.max_per_pair, "this account from your address"),
            (ip_key, self.max_per_ip, "your address"),
        ):
            wait = await self.window.retry_after(key, limit, at)
            if wait is not None:
                raise TooManyRequests(
                    f"too many failed logins for {what}; try again in {wait} s", wait
                )
        cap = self.slowdown_after + 16  # beyond this the delay is at its cap anyway
        failures = await self.window.count(account_key, cap, at)
        return account_delay(failures, self.slowdown_after, self.max_delay)

    async def record_failure(self, email: str, ip: str) -> None:
        await self.window.record(list(self._keys(email, ip)), now_ms())

    async def clear(self, email: str, ip: str) -> None:
        """After a successful login: forget this address's failures for the account (others'
        failures stay counted, so an attacker's slowdown is not lifted by the owner)."""
        await self.window.clear(self._keys(email, ip)[0])


def account_delay(failures: int, slowdown_after: int, max_delay: float) -> float:
    """Seconds to wait before checking a password for an account with `failures` recent
    failures from all addresses: 0 up to the threshold, then 0.25 s doubling, capped."""
    if failures < slowdown_after:
        return 0.0
    return float(min(max_delay, 0.25 * 2 ** min(failures - slowdown_after, 16)))


class RegistrationThrottle:
    GLOBAL_KEY = "all"

    def __init__(self, db: Database, settings: Settings) -> None:
        self.window = EventWindow(db, "registrations", settings.REGISTER_WINDOW_SECONDS)
        self.max_per_ip = settings.REGISTER_MAX_PER_IP
        self.max_total = settings.REGISTER_MAX_TOTAL

    async def admit(self, ip: str) -> None:
        """Count one registration attempt, or raise 429 (the attempt is then not counted).

        Recorded first, counted second: concurrent attempts can refuse each other at the edge,
        never all pass together.
        """
        at = now_ms()
        ip_key = f"ip:{address_bucket(ip)}"
        ids = await self.window.record([ip_key, self.GLOBAL_KEY], at)
        for key, limit, message in (
            (ip_key, self.max_per_ip, "too many accounts created from your address"),
            (
                self.GLOBAL_KEY,
                self.max_total,
                "too many new accounts right now (a limit for everyone)",
            ),
        ):
            recent = await self.window.recent(key, limit + 1, at + 1)
            if len(recent) > limit:
                await self.window.forget(ids)
                wait = max(1, (min(recent) + self.window.window_ms - at) // 1000 + 1)
                raise TooManyRequests(f"{message}; try again in {wait} s", wait)

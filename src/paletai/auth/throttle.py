"""Login and registration throttles, shared by every worker process through MongoDB.

Each event is a document `{key, at_ms, expires_at}` with a TTL; a limit is "at most N events
for a key within the window". The policy (docs/architecture.md, "Authentication"):

- login attempts count as failures from their start until they succeed (so a burst cannot all
  pass before the first failure is counted);
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
from dataclasses import dataclass
from typing import Any

from paletai.config import Settings
from paletai.core.errors import TooManyRequests
from paletai.core.network import address_bucket
from paletai.core.security import Refusals
from paletai.db.client import Database
from paletai.db.ids import new_id


class EventWindow:
    """Counts events per key in a sliding window, in one collection."""

    def __init__(
        self, db: Database, collection: str, window_seconds: int, refusals: Refusals | None = None
    ) -> None:
        self.collection = db[collection]
        self.window_ms = window_seconds * 1000
        self.refusals = refusals or Refusals()

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

    async def admit(self, limited: list[tuple[str, int, str]], also: list[str]) -> list[str]:
        """Record one event under every key, or raise 429 with the first `(key, limit,
        message)` this event would take past its limit (then nothing stays recorded).

        Recorded first, counted second: concurrent requests see each other, so a burst cannot
        all pass before the first is counted. Returns the recorded ids.
        """
        at = now_ms()
        for key, _, message in limited:
            until = self.refusals.until(f"{self.collection.name}:{key}", at)
            if until is not None:
                wait = max(1, (until - at + 999) // 1000)
                raise TooManyRequests(f"{message}; try again in {wait} s", wait)
        # Already at a limit: refuse on a read alone (a flood past its limit writes nothing).
        for key, limit, message in limited:
            self._refuse_beyond(await self.recent(key, limit, at), limit - 1, at, key, message)
        ids = await self.record([key for key, _, _ in limited] + also, at)
        try:
            for key, limit, message in limited:
                recent = await self.recent(key, limit + 1, at + 1)
                self._refuse_beyond(recent, limit, at, key, message)
        except TooManyRequests:
            await self.forget(ids)
            raise
        return ids

    def _refuse_beyond(
        self, recent: list[int], allowed: int, at: int, key: str, message: str
    ) -> None:
        """429 when more than `allowed` events are recent; Retry-After until the oldest of
        them leaves the window."""
        if len(recent) > allowed:
            until = min(recent) + self.window_ms
            self.refusals.add(f"{self.collection.name}:{key}", until, at)
            wait = max(1, (until - at) // 1000 + 1)
            raise TooManyRequests(f"{message}; try again in {wait} s", wait)

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


@dataclass
class LoginAttempt:
    ids: list[str]
    delay: float  # seconds to wait before checking the password
    known: bool  # this account has logged in from this address before


class LoginThrottle:
    """Each attempt counts as a failure from the moment it starts until it succeeds."""

    KNOWN_FOR = dt.timedelta(days=30)

    def __init__(self, db: Database, settings: Settings, refusals: Refusals | None = None) -> None:
        self.window = EventWindow(db, "login_failures", settings.LOGIN_WINDOW_SECONDS, refusals)
        self.known = db["login_known"]
        self.max_per_pair = settings.LOGIN_MAX_FAILURES
        self.max_per_ip = settings.LOGIN_MAX_FAILURES_PER_IP
        self.slowdown_after = settings.LOGIN_ACCOUNT_SLOWDOWN_AFTER
        self.max_delay = settings.LOGIN_ACCOUNT_MAX_DELAY_SECONDS

    @staticmethod
    def _keys(email: str, ip: str) -> tuple[str, str, str]:
        account, bucket = email.lower(), address_bucket(ip)
        return f"pair:{account}|{bucket}", f"ip:{bucket}", f"email:{account}"

    async def begin(self, email: str, ip: str) -> LoginAttempt:
        """Count the attempt, or raise 429 past a strict limit."""
        pair_key, ip_key, account_key = self._keys(email, ip)
        ids = await self.window.admit(
            [
                (
                    pair_key,
                    self.max_per_pair,
                    "too many failed logins for this account from your address",
                ),
                (ip_key, self.max_per_ip, "too many failed logins from your address"),
            ],
            also=[account_key],
        )
        cap = self.slowdown_after + 16  # beyond this the delay is at its cap anyway
        others = await self.window.count(account_key, cap + 1, now_ms() + 1) - 1
        known = await self.known.find_one({"_id": pair_key}, {"_id": 1}) is not None
        return LoginAttempt(ids, account_delay(others, self.slowdown_after, self.max_delay), known)

    async def succeeded(self, attempt: LoginAttempt, email: str, ip: str) -> None:
        """Forget this attempt and this address's failures for the account (failures from
        elsewhere stay counted: the owner's success does not lift an attacker's slowdown), and
        remember the address as one the account logs in from."""
        pair_key = self._keys(email, ip)[0]
        # (A refused pair never gets here, so no refusal in this process is lifted early.)
        await self.window.forget(attempt.ids)
        await self.window.clear(pair_key)
        expires = dt.datetime.now(dt.UTC) + self.KNOWN_FOR
        # replace_one, not $set: the stand-in stores a $set datetime as text (see docs/).
        await self.known.replace_one(
            {"_id": pair_key}, {"_id": pair_key, "expires_at": expires}, upsert=True
        )


def account_delay(failures: int, slowdown_after: int, max_delay: float) -> float:
    """Seconds to wait before checking a password for an account with `failures` recent
    failures from all addresses: 0 up to the threshold, then 0.25 s doubling, capped."""
    if failures < slowdown_after:
        return 0.0
    return float(min(max_delay, 0.25 * 2 ** min(failures - slowdown_after, 16)))


class RegistrationThrottle:
    GLOBAL_KEY = "all"

    def __init__(self, db: Database, settings: Settings, refusals: Refusals | None = None) -> None:
        self.window = EventWindow(db, "registrations", settings.REGISTER_WINDOW_SECONDS, refusals)
        self.max_per_ip = settings.REGISTER_MAX_PER_IP
        self.max_total = settings.REGISTER_MAX_TOTAL

    async def admit(self, ip: str) -> None:
        """Count one registration attempt, or raise 429 (the attempt is then not counted)."""
        ip_key = f"ip:{address_bucket(ip)}"
        await self.window.admit(
            [
                (ip_key, self.max_per_ip, "too many accounts created from your address"),
                (self.GLOBAL_KEY, self.max_total, "too many new accounts right now, from everyone"),
            ],
            also=[],
        )

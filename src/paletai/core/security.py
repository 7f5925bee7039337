"""Password hashing (argon2) and access tokens (JWT, HS256)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from paletai.core.errors import ServiceUnavailable

# argon2id at OWASP's recommended minimum (m=19 MiB, t=2, p=1): ~19 MiB and one core per hash,
# against argon2-cffi's default 64 MiB over 4 lanes. Hashes made with other parameters (the old
# default included) still verify: the parameters are in the hash; login re-hashes them.
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1
_hasher = PasswordHasher(
    time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB, parallelism=ARGON2_PARALLELISM
)
# A real hash to verify against when the user does not exist, so timing does not reveal it.
_DUMMY_HASH = _hasher.hash("paletai-dummy-password")
ALGORITHM = "HS256"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """Constant-work check: a missing user still costs one argon2 verification."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True for a hash made with other argon2 parameters than today's."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return False


T = TypeVar("T")


def default_hash_slots() -> int:
    """One concurrent hash per core but one (at least one): more only queue for CPU while each
    holds its memory, and the last core stays free for the event loop."""
    return max(1, (os.cpu_count() or 1) - 1)


class PasswordHashing:
    """argon2 off the event loop, at most `slots` at a time in this process.

    Each hash holds ~19 MiB and a core; without a bound, anonymous requests could run any
    number at once. A request that finds every slot taken waits up to `wait_seconds`, then
    answers 503 with Retry-After. Waiters marked `priority` (a login from an address the
    account has logged in from before) are served before the others, so a flood of strangers'
    requests delays returning users by the hashes already running, not by the whole queue.
    """

    def __init__(
        self,
        slots: int,
        wait_seconds: float,
        *,
        hash_fn: Callable[[str], str] = hash_password,
        verify_fn: Callable[[str, str | None], bool] = verify_password,
    ) -> None:
        self.slots = slots
        self.wait_seconds = wait_seconds
        self._free = slots
        self._queues: tuple[deque[asyncio.Future[None]], ...] = (deque(), deque())
        self._hash_fn = hash_fn
        self._verify_fn = verify_fn
        # Its own `slots` threads: glibc keeps a freed 19 MiB buffer in the arena of the thread
        # that used it, so hashing on the shared pool's many threads kept ~19 MiB per thread.
        self._threads = ThreadPoolExecutor(slots, thread_name_prefix="argon2")

    async def _acquire(self, priority: bool) -> bool:
        # Invariant: slots are free only while nobody waits (a release hands its slot over).
        if self._free > 0:
            self._free -= 1
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._queues[0 if priority else 1]
        queue.append(waiter)
        try:
            await asyncio.wait({waiter}, timeout=self.wait_seconds)
        except BaseException:
            self._abandon(waiter, queue)
            raise
        if waiter.done():
            return True
        self._abandon(waiter, queue)
        return False

    def _abandon(self, waiter: asyncio.Future[None], queue: deque[asyncio.Future[None]]) -> None:
        if waiter.done() and not waiter.cancelled():
            self._release()  # the slot arrived just as we gave up: pass it on
            return
        waiter.cancel()
        with contextlib.suppress(ValueError):
            queue.remove(waiter)

    def _release(self) -> None:
        for queue in self._queues:
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self._free += 1

    async def _run(self, fn: Callable[..., T], *args: Any, priority: bool = False) -> T:
        if not await self._acquire(priority):
            raise ServiceUnavailable(
                "the server is busy checking passwords; retry in a second", retry_after=1
            )
        try:
            return await asyncio.get_running_loop().run_in_executor(self._threads, fn, *args)
        finally:
            self._release()

    async def hash(self, password: str) -> str:
        return await self._run(self._hash_fn, password)

    async def verify(
        self, password: str, password_hash: str | None, *, priority: bool = False
    ) -> bool:
        return await self._run(self._verify_fn, password, password_hash, priority=priority)


def create_access_token(subject: str, secret: str, expires_minutes: int) -> tuple[str, int]:
    now = dt.datetime.now(dt.UTC)
    expires = now + dt.timedelta(minutes=expires_minutes)
    payload: dict[str, Any] = {"sub": subject, "iat": now, "exp": expires, "typ": "access"}
    return jwt.encode(payload, secret, algorithm=ALGORITHM), expires_minutes * 60


def decode_access_token(token: str, secret: str) -> str | None:
    """The user id in a valid, unexpired token; None otherwise."""
    try:
        payload = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
        )
    except jwt.PyJWTError:
        return None
    if payload.get("typ") != "access":
        return None
    sub = payload.get("sub")
    return sub if isinstance(sub, str) else None


class Refusals:
    """Keys this process refused, until when (ms): a flood past its limit is answered without a
    database round trip. A refused key's count only falls as its events age out, so this never
    refuses where the database would admit (at most a little longer, at a burst's edge)."""

    def __init__(self, max_keys: int = 50_000) -> None:
        self.max_keys = max_keys
        self._until: dict[str, int] = {}

    def until(self, key: str, at: int) -> int | None:
        until = self._until.get(key)
        return until if until is not None and until > at else None

    def add(self, key: str, until: int, at: int) -> None:
        if len(self._until) >= self.max_keys:
            self._until = {k: u for k, u in self._until.items() if u > at}
            if len(self._until) >= self.max_keys:
                self._until.clear()
        self._until[key] = until

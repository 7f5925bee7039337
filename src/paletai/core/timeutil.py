"""Time helpers: everything is UTC; the stand-in returns naive UTC datetimes, so normalise."""

from __future__ import annotations

import datetime as dt
import secrets


def utcnow() -> dt.datetime:
    # Millisecond precision: what MongoDB stores, so a value read back compares equal.
    now = dt.datetime.now(dt.UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def as_utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def new_rank(at: dt.datetime | None = None) -> int:
    """A unique-enough, time-ordered 64-bit sort key (µs * 1000 + random).

    Feed pagination ranges over this integer (fast on every MongoDB flavour); a unique index
    turns the rare collision into a DuplicateKeyError that the caller retries.
    """
    when = at or dt.datetime.now(dt.UTC)
    micros = int(when.timestamp() * 1_000_000)
    return micros * 1000 + secrets.randbelow(1000)

"""The retry policy's arithmetic: Retry-After parsing and backoff bounds."""

from __future__ import annotations

import email.utils
import time

import pytest

from paletai.generation.providers.retry import RetryPolicy, call_with_retries, parse_retry_after


def test_retry_after_forms() -> None:
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "0.5"}) == 0.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None
    assert parse_retry_after(None) is None
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    waited = parse_retry_after({"Retry-After": date}, now=now)
    assert waited is not None
    assert 29 <= waited <= 31
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after({"Retry-After": past}, now=now) == 0.0


def test_backoff_is_full_jitter_and_capped() -> None:
    policy = RetryPolicy(timeout_seconds=1, max_retries=5, base_seconds=1, max_delay_seconds=8)
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (9, 8)]:
        waits = [policy.backoff(attempt) for _ in range(200)]
        assert all(0 <= wait <= ceiling for wait in waits)
        assert max(waits) > ceiling / 2  # spread over the whole range, not fixed


async def test_other_exceptions_are_not_retried() -> None:
    calls = 0

    async def broken() -> None:
        nonlocal calls
        calls += 1
        raise KeyError("a bug, not a provider fault")

    policy = RetryPolicy(timeout_seconds=1, max_retries=3, base_seconds=0)
    with pytest.raises(KeyError):
        await call_with_retries(broken, policy, target="model 'm'")
    assert calls == 1

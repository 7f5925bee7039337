"""Fault handling shared by the SDK providers: one timeout per call and one retry policy.

The SDK clients are built with `max_retries=0`, so this policy is the only one: retries with
exponential backoff and full jitter on 429 / 5xx / connection errors / timeouts, honouring
Retry-After; never on 401/403 (bad key) or other 4xx (bad request, unknown model).
Messages and logs name the status and the model, never the key or the provider's raw text
(a 401 from OpenAI quotes part of the key).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import anthropic
import httpx
import httpx2
import openai

from paletai.config import Settings
from paletai.generation.providers.base import ProviderAuthError, ProviderError

logger = logging.getLogger("paletai.generation.providers")

T = TypeVar("T")

AUTH_MESSAGE = "the AI provider rejected the API key"
# A Retry-After longer than this is not waited for in the worker: the task fails retryable.
MAX_WAIT_SECONDS = 60.0

_STATUS_ERRORS = (openai.APIStatusError, anthropic.APIStatusError)
_CONNECTION_ERRORS = (
    openai.APIConnectionError,
    anthropic.APIConnectionError,
    httpx2.TransportError,
    httpx.TransportError,
)
_TIMEOUT_ERRORS = (openai.APITimeoutError, anthropic.APITimeoutError, TimeoutError)
_RETRYABLE_STATUS = {408, 409, 425, 429}


class ProviderRequestError(ProviderError):
    """The provider refused the request itself (HTTP 400, 404, 422, ...): never retried.

    Carries what a provider may adapt to (a model without structured outputs), never the
    provider's own text.
    """

    def __init__(self, message: str, *, status: int, about_response_format: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.about_response_format = about_response_format


@dataclass(frozen=True)
class RetryPolicy:
    """How long one call may take and how often a failed call is tried again."""

    timeout_seconds: float
    max_retries: int
    base_seconds: float
    max_delay_seconds: float = 30.0
    max_wait_seconds: float = MAX_WAIT_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            timeout_seconds=settings.AI_TIMEOUT_SECONDS,
            max_retries=settings.AI_MAX_RETRIES,
            base_seconds=settings.AI_RETRY_BASE_SECONDS,
        )

    def backoff(self, attempt: int) -> float:
        """Full jitter: a random wait up to base * 2^(attempt-1), capped."""
        ceiling = min(self.max_delay_seconds, self.base_seconds * 2 ** (attempt - 1))
        return random.uniform(0, ceiling)


@dataclass(frozen=True)
class _Failure:
    """A retryable failure of one attempt."""

    reason: str  # for messages: "HTTP 503", "timeout", "connection error"
    status: int | None = None
    retry_after: float | None = None


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` in seconds or as an HTTP date."""
    if not headers:
        return None
    lowered = {key.lower(): value for key, value in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _classify(exc: BaseException, target: str) -> _Failure:
    """A retryable failure, or raise the ProviderError that ends the call at once."""
    if isinstance(exc, ProviderError):
        raise exc
    if isinstance(exc, _TIMEOUT_ERRORS):
        return _Failure("timeout")
    if isinstance(exc, _STATUS_ERRORS):
        status = exc.status_code
        if status in (401, 403):
            raise ProviderAuthError(
                AUTH_MESSAGE if status == 401 else f"{AUTH_MESSAGE} (HTTP 403: no access)"
            ) from None
        if status in _RETRYABLE_STATUS or status >= 500:
            headers = dict(exc.response.headers) if exc.response is not None else None
            return _Failure(f"HTTP {status}", status, parse_retry_after(headers))
        raise _refusal(exc, status, target) from None
    if isinstance(exc, _CONNECTION_ERRORS):
        return _Failure("connection error")
    raise exc


def _refusal(
    exc: openai.APIStatusError | anthropic.APIStatusError, status: int, target: str
) -> ProviderRequestError:
    if status == 404:
        return ProviderRequestError(f"the AI provider has no {target} (HTTP 404)", status=status)
    # Only codes and parameter names are read from the body: its text may quote the request.
    code = exc.code if isinstance(exc, openai.APIStatusError) else exc.error_code
    param = exc.param if isinstance(exc, openai.APIStatusError) else None
    detail = exc.message.lower()
    if code == "content_filter" or "content management policy" in detail:
        return ProviderRequestError(
            "the AI provider's content filter blocked this prompt", status=status
        )
    about_format = param == "response_format" or "response_format" in detail
    logger.warning(
        "AI provider refused the request for %s: HTTP %s (%s, code=%s, param=%s)",
        target,
        status,
        type(exc).__name__,
        code,
        param,
    )
    return ProviderRequestError(
        f"the AI provider refused the request for {target} (HTTP {status})",
        status=status,
        about_response_format=about_format,
    )


def _exhausted_message(failure: _Failure, attempts: int, policy: RetryPolicy) -> str:
    tried = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
    if failure.status == 429:
        return f"the AI provider is rate limiting requests (HTTP 429) {tried}"
    if failure.status is not None:
        return f"the AI provider is unavailable ({failure.reason}) {tried}"
    if failure.reason == "timeout":
        return f"the AI provider did not answer within {policy.timeout_seconds:g} s, {tried}"
    return f"could not reach the AI provider ({failure.reason}) {tried}"


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    target: str,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run `call` (one whole SDK call, streamed or not) under the timeout and retry policy.

    `target` names the model or deployment in messages, e.g. "model 'gpt-4o'". Raises
    ProviderAuthError on 401/403, ProviderError on other refusals and, with retryable=True,
    when the retries are spent.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            async with asyncio.timeout(policy.timeout_seconds):
                return await call()
        except Exception as exc:  # classified: retryable, or re-raised as ProviderError
            failure = _classify(exc, target)
        wait = failure.retry_after
        if attempt > policy.max_retries or (wait is not None and wait > policy.max_wait_seconds):
            logger.warning("AI call to %s failed (%s); giving up", target, failure.reason)
            raise ProviderError(
                _exhausted_message(failure, attempt, policy),
                retryable=True,
                retry_after=wait,
            )
        delay = wait if wait is not None else policy.backoff(attempt)
        logger.info(
            "AI call to %s failed (%s); retry %d of %d in %.2f s",
            target,
            failure.reason,
            attempt,
            policy.max_retries,
            delay,
        )
        await sleep(delay)

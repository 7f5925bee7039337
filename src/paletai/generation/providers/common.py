"""Plumbing shared by the SDK providers: stream progress, token usage, building the draft."""

from __future__ import annotations

import time
from collections.abc import Mapping

import httpx2

from paletai.generation.providers.base import GameDraft, HealthState, Progress, ProviderError
from paletai.generation.validation import GameFields

# Report stream progress at most this often, or after this many chunks, whichever comes first.
PROGRESS_INTERVAL_SECONDS = 0.5
PROGRESS_EVERY_CHUNKS = 200


class StreamProgress:
    """Turns a stream of chunks into progress("generating", {"chars", "tokens"}) calls."""

    def __init__(self, progress: Progress, *, chars: int = 0, tokens: int = 0) -> None:
        self._progress = progress
        # A continuation counts on from what the first part reported.
        self.chars = chars
        self.tokens = tokens
        self.thinking_chars = 0
        self._last = 0.0
        self._since = 0

    async def chunk(self, *, chars: int = 0, thinking_chars: int = 0) -> None:
        """Count one chunk (about one token) and report if it is time."""
        self.chars += chars
        self.thinking_chars += thinking_chars
        self.tokens += 1
        self._since += 1
        now = time.monotonic()
        if now - self._last >= PROGRESS_INTERVAL_SECONDS or self._since >= PROGRESS_EVERY_CHUNKS:
            await self.report(now)

    async def report(self, now: float | None = None) -> None:
        self._last = time.monotonic() if now is None else now
        self._since = 0
        info: dict[str, int] = {"chars": self.chars, "tokens": self.tokens}
        if self.thinking_chars:
            info["thinking_chars"] = self.thinking_chars
        await self._progress("generating", dict(info))


def add_usage(total: dict[str, int], more: Mapping[str, int]) -> dict[str, int]:
    """Sum token counts key by key (input_tokens, output_tokens)."""
    out = dict(total)
    for key, value in more.items():
        out[key] = out.get(key, 0) + int(value)
    return out


def make_draft(
    fields: GameFields, *, provider: str, model: str, usage: dict[str, int]
) -> GameDraft:
    return GameDraft(
        title=fields.title,
        description=fields.description,
        controls=fields.controls,
        html=fields.html,
        provider=provider,
        model=model,
        usage=usage,
    )


def no_game_error(provider: str) -> ProviderError:
    # Retryable: another sampling usually produces a well-formed answer.
    return ProviderError(
        f"the AI provider ({provider}) answered without a game (no JSON and no HTML block)",
        retryable=True,
    )


def sdk_timeout(seconds: float) -> httpx2.Timeout:
    """The SDK client's timeout: the whole call's budget, with a short connect."""
    return httpx2.Timeout(seconds, connect=min(10.0, seconds))


DEGRADED_SECONDS = 60.0


class HealthFromRecentCalls:
    """`check()` for SDK providers: no API call (health is polled), "degraded" for a while after
    a call failed. Subclasses set `_configured` and update `_last_failure`."""

    _configured: bool = False
    _last_failure: float | None = None

    async def check(self) -> HealthState:
        if not self._configured:
            return "not_configured"
        failed = self._last_failure
        if failed is not None and time.monotonic() - failed < DEGRADED_SECONDS:
            return "degraded"
        return "healthy"

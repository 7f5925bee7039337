"""The contract between the generation pipeline and the game authors (offline, OpenAI, ...)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

HealthState = Literal["healthy", "degraded", "not_configured"]

# progress(stage, info): the pipeline records it on the task, so a poller sees movement.
# Providers call it with stage "generating" and info such as {"chars": 1234}.
Progress = Callable[[str, dict[str, Any]], Awaitable[None]]


async def no_progress(stage: str, info: dict[str, Any]) -> None:
    """A Progress that records nothing."""


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    # A stable seed (the game id) so that a retried task themes its game the same way.
    seed: str
    # Remix: the parent game's HTML and title, to be changed as the prompt asks.
    parent_html: str | None = None
    parent_title: str | None = None


@dataclass
class GameDraft:
    """What an author returns: one self-contained HTML file and its labels."""

    title: str
    description: str
    controls: str
    html: str
    provider: str
    model: str
    usage: dict[str, int] = field(default_factory=dict)  # input_tokens, output_tokens


class ProviderError(Exception):
    """A provider call failed. `message` is shown to the player on the failed task."""

    def __init__(
        self, message: str, *, retryable: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after


class ProviderAuthError(ProviderError):
    """The provider refused the credentials: never retried."""


class InvalidGameError(ProviderError):
    """The model's game failed validation even after the repair round."""


class GameProvider(Protocol):
    """An author of games. Implementations: offline templates, OpenAI, Azure OpenAI, Anthropic."""

    name: str
    model: str

    async def generate(self, request: GenerationRequest, progress: Progress) -> GameDraft: ...

    async def repair(
        self,
        request: GenerationRequest,
        draft: GameDraft,
        complaints: list[str],
        progress: Progress,
    ) -> GameDraft: ...

    async def check(self) -> HealthState: ...

    async def aclose(self) -> None: ...

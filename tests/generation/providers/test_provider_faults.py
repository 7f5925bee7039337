"""The fault policy, per provider, through the real SDKs: timeouts, retries, refusals."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable

import pytest

from paletai.generation.providers.base import (
    GameProvider,
    GenerationRequest,
    ProviderAuthError,
    ProviderError,
)
from tests.generation.providers.fake_llm import (
    VALID_GAME_HTML,
    FakeLLM,
    ProgressLog,
    error,
    ok_game,
    slow,
)

REQUEST = GenerationRequest(prompt="Create a simple dodge game", seed="g1")
FLAVOURS = ["openai", "azure-openai", "anthropic"]


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_429_waits_for_retry_after_then_succeeds(
    flavour: str,
    fake: FakeLLM,
    provider_for: Callable[..., GameProvider],
    progress: ProgressLog,
) -> None:
    # Seconds for one flavour (the common header), milliseconds for the others (quicker).
    wait = {"Retry-After": "1"} if flavour == "openai" else {"retry-after-ms": "300"}
    fake.plan(error(429, headers=wait), ok_game())
    provider = provider_for(flavour, AI_RETRY_BASE_SECONDS=0)

    draft = await provider.generate(REQUEST, progress)

    assert draft.html == VALID_GAME_HTML
    first, second = fake.requests
    assert second.time - first.time >= (0.95 if flavour == "openai" else 0.28)
    # The SDK's own retries are off: its retry counter header stays at 0.
    assert second.headers.get("x-stainless-retry-count", "0") == "0"


async def test_long_retry_after_is_not_waited_for_in_the_worker(
    fake: FakeLLM, provider_for: Callable[..., GameProvider], progress: ProgressLog
) -> None:
    fake.plan(error(429, headers={"Retry-After": "120"}), ok_game())

    with pytest.raises(ProviderError) as caught:
        await provider_for("anthropic").generate(REQUEST, progress)

    assert len(fake.requests) == 1
    assert caught.value.retryable
    assert caught.value.retry_after == 120
    assert "rate limiting requests (HTTP 429) after 1 attempt" in caught.value.message


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_repeated_500_gives_up_after_capped_attempts(
    flavour: str,
    fake: FakeLLM,
    provider_for: Callable[..., GameProvider],
    progress: ProgressLog,
) -> None:
    fake.plan(*[error(500)] * 10)
    provider = provider_for(flavour, AI_MAX_RETRIES=3)

    with pytest.raises(ProviderError) as caught:
        await provider.generate(REQUEST, progress)

    assert len(fake.requests) == 1 + 3
    assert caught.value.retryable
    assert caught.value.message == "the AI provider is unavailable (HTTP 500) after 4 attempts"
    assert await provider.check() == "degraded"


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_503_then_success_is_retried(
    flavour: str,
    fake: FakeLLM,
    provider_for: Callable[..., GameProvider],
    progress: ProgressLog,
) -> None:
    fake.plan(error(503), error(502), ok_game())
    provider = provider_for(flavour, ENABLE_STREAMING=True)

    draft = await provider.generate(REQUEST, progress)

    assert draft.html == VALID_GAME_HTML
    assert len(fake.requests) == 3
    assert await provider.check() == "healthy"


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_timeout_is_retried_then_reported(
    flavour: str,
    fake: FakeLLM,
    provider_for: Callable[..., GameProvider],
    progress: ProgressLog,
) -> None:
    fake.plan(slow(1.5), slow(1.5))
    provider = provider_for(flavour, AI_TIMEOUT_SECONDS=0.3, AI_MAX_RETRIES=1)

    with pytest.raises(ProviderError) as caught:
        await provider.generate(REQUEST, progress)

    assert len(fake.requests) == 2
    assert caught.value.retryable
    assert caught.value.message == "the AI provider did not answer within 0.3 s, after 2 attempts"


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_stream_that_stalls_times_out(
    flavour: str,
    fake: FakeLLM,
    provider_for: Callable[..., GameProvider],
    progress: ProgressLog,
) -> None:
    # Headers arrive at once, then chunks trickle slower than the per-call budget allows.
    fake.plan(ok_game(chunk_size=50, chunk_delay=0.2))
    provider = provider_for(
        flavour, ENABLE_STREAMING=True, AI_TIMEOUT_SECONDS=0.5, AI_MAX_RETRIES=0
    )

    with pytest.raises(ProviderError, match="did not answer within 0.5 s, after 1 attempt$"):
        await provider.generate(REQUEST, progress)


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("streaming", [False, True])
async def test_401_is_an_auth_error_at_once_without_the_key(
    flavour: str,
    streaming: bool,
    fake: FakeLLM,
    provider_for: Callable[..., GameProvider],
    progress: ProgressLog,
    test_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.plan(error(401), ok_game())
    provider = provider_for(flavour, ENABLE_STREAMING=streaming)

    with pytest.raises(ProviderAuthError) as caught:
        await provider.generate(REQUEST, progress)

    assert len(fake.requests) == 1
    assert caught.value.message == "the AI provider rejected the API key"
    assert not caught.value.retryable
    shown = "".join(traceback.format_exception(caught.value)) + repr(caught.value)
    assert test_key not in shown
    assert test_key not in caplog.text
    assert all(test_key not in str(arg) for rec in caplog.records for arg in rec.args or ())


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_unknown_model_is_named_and_not_retried(
    flavour: str,
    fake: FakeLLM,
    provider_for: Callable[..., GameProvider],
    progress: ProgressLog,
) -> None:
    fake.plan(error(404), ok_game())
    provider = provider_for(flavour)

    with pytest.raises(ProviderError) as caught:
        await provider.generate(REQUEST, progress)

    assert len(fake.requests) == 1
    assert not caught.value.retryable
    kind = "Azure deployment" if flavour == "azure-openai" else "model"
    assert caught.value.message == f"the AI provider has no {kind} {provider.model!r} (HTTP 404)"


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_bad_request_is_not_retried(
    flavour: str,
    fake: FakeLLM,
    provider_for: Callable[..., GameProvider],
    progress: ProgressLog,
) -> None:
    fake.plan(error(400), ok_game())

    with pytest.raises(
        ProviderError, match=r"refused the request for (model|Azure deployment) '.*' \(HTTP 400\)$"
    ):
        await provider_for(flavour).generate(REQUEST, progress)

    assert len(fake.requests) == 1


async def test_unreachable_provider_is_a_retryable_error(
    provider_for: Callable[..., GameProvider], progress: ProgressLog
) -> None:
    # A port nobody listens on (bound, then closed).
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = provider_for(
        "openai", OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1", AI_MAX_RETRIES=1
    )

    with pytest.raises(ProviderError) as caught:
        await provider.generate(REQUEST, progress)

    assert caught.value.retryable
    assert (
        caught.value.message
        == "could not reach the AI provider (connection error) after 2 attempts"
    )

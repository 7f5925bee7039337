"""Fixtures for the provider tests: one fake LLM server per session, reset for each test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from paletai.config import Settings
from paletai.generation.providers.anthropic_provider import AnthropicProvider
from paletai.generation.providers.base import GameProvider
from paletai.generation.providers.openai_provider import OpenAIProvider
from tests.generation.providers.fake_llm import FakeLLM, ProgressLog

TEST_KEY = "sk-test-SECRET-7f3a9c1e5b"
FLAVOURS = ["openai", "azure-openai", "anthropic"]


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeLLM) -> Iterator[FakeLLM]:
    fake_server.reset()
    yield fake_server
    fake_server.reset()


@pytest.fixture
def settings_for(fake: FakeLLM) -> Callable[..., Settings]:
    """Settings that point `flavour` at the fake, with small retry waits."""

    def build(flavour: str, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "AI_PROVIDER": flavour,
            "OPENAI_API_KEY": TEST_KEY,
            "OPENAI_BASE_URL": fake.openai_base_url,
            "OPENAI_MODEL": "gpt-fake",
            "AZURE_OPENAI_ENDPOINT": fake.url,
            "AZURE_OPENAI_API_KEY": TEST_KEY,
            "AZURE_OPENAI_MODEL": "games-deployment",
            "AZURE_OPENAI_API_VERSION": "2024-10-21",
            "ANTHROPIC_API_KEY": TEST_KEY,
            "ANTHROPIC_BASE_URL": fake.url,
            "ANTHROPIC_MODEL": "claude-fake",
            "ENABLE_STREAMING": False,
            "STREAMING_THINKING_TOKENS": 0,
            "AI_TIMEOUT_SECONDS": 10.0,
            "AI_MAX_RETRIES": 2,
            "AI_RETRY_BASE_SECONDS": 0.01,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return build


@pytest.fixture
def test_key() -> str:
    return TEST_KEY


@pytest.fixture
async def provider_for(
    settings_for: Callable[..., Settings],
) -> AsyncIterator[Callable[..., GameProvider]]:
    """Build a provider for a flavour against the fake; closed after the test."""
    made: list[GameProvider] = []

    def build(flavour: str, **overrides: Any) -> GameProvider:
        settings = settings_for(flavour, **overrides)
        provider: GameProvider
        if flavour == "anthropic":
            provider = AnthropicProvider(settings)
        else:
            provider = OpenAIProvider(settings, azure=flavour == "azure-openai")
        made.append(provider)
        return provider

    yield build
    for provider in made:
        await provider.aclose()


@pytest.fixture
def progress() -> ProgressLog:
    return ProgressLog()

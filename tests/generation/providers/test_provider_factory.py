"""make_provider picks the author from the settings, including the legacy flags."""

from __future__ import annotations

from typing import Any

import pytest

from paletai.config import Settings
from paletai.generation.providers.anthropic_provider import AnthropicProvider
from paletai.generation.providers.base import GenerationRequest, ProviderAuthError, no_progress
from paletai.generation.providers.factory import make_provider
from paletai.generation.providers.openai_provider import OpenAIProvider

EMPTY: dict[str, Any] = {
    "AI_PROVIDER": None,
    "OPENAI_API_KEY": None,
    "AZURE_OPENAI_ENDPOINT": None,
    "AZURE_OPENAI_API_KEY": None,
    "ANTHROPIC_API_KEY": None,
    "IS_ANTHROPIC_ENDPOINT": False,
    "IS_OPENAI_ENDPOINT": False,
}


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **{**EMPTY, **values})  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("values", "name", "model"),
    [
        ({"AI_PROVIDER": "openai", "OPENAI_API_KEY": "k", "OPENAI_MODEL": "m1"}, "openai", "m1"),
        ({"OPENAI_API_KEY": "k"}, "openai", "gpt-4o"),
        (
            {
                "AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com",
                "AZURE_OPENAI_API_KEY": "k",
                "AZURE_OPENAI_MODEL": "dep",
                "IS_OPENAI_ENDPOINT": "True",
            },
            "azure-openai",
            "dep",
        ),
        ({"ANTHROPIC_API_KEY": "k", "IS_ANTHROPIC_ENDPOINT": "true"}, "anthropic", None),
        (
            {"AI_PROVIDER": "anthropic", "ANTHROPIC_API_KEY": "k", "ANTHROPIC_MODEL": "c"},
            "anthropic",
            "c",
        ),
    ],
)
async def test_sdk_providers(values: dict[str, Any], name: str, model: str | None) -> None:
    provider = make_provider(settings(**values))
    try:
        assert provider.name == name
        assert isinstance(provider, AnthropicProvider if name == "anthropic" else OpenAIProvider)
        if model:
            assert provider.model == model
        assert await provider.check() == "healthy"
    finally:
        await provider.aclose()


async def test_missing_key_is_not_configured_and_refuses_without_a_call() -> None:
    provider = make_provider(settings(AI_PROVIDER="openai"))
    try:
        assert await provider.check() == "not_configured"
        with pytest.raises(ProviderAuthError, match="set OPENAI_API_KEY"):
            await provider.generate(GenerationRequest(prompt="p", seed="s"), no_progress)
    finally:
        await provider.aclose()


def test_no_settings_means_offline() -> None:
    provider = make_provider(settings())
    assert provider.name == "offline"

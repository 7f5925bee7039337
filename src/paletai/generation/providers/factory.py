"""Choose the game author from the settings."""

from __future__ import annotations

from paletai.config import Settings
from paletai.generation.providers.base import GameProvider


def make_provider(settings: Settings) -> GameProvider:
    """The provider in force (`settings.ai_provider`): openai, azure-openai, anthropic, offline.

    SDK modules are imported only for the provider chosen, so the offline default starts fast.
    """
    provider = settings.ai_provider
    if provider == "openai":
        from paletai.generation.providers.openai_provider import OpenAIProvider

        return OpenAIProvider(settings)
    if provider == "azure-openai":
        from paletai.generation.providers.openai_provider import OpenAIProvider

        return OpenAIProvider(settings, azure=True)
    if provider == "anthropic":
        from paletai.generation.providers.anthropic_provider import AnthropicProvider

        return AnthropicProvider(settings)
    from paletai.generation.providers.offline import OfflineProvider

    return OfflineProvider()

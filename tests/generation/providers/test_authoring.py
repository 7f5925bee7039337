"""author_game: generate, validate, repair once, validate again (real SDKs, fake server)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from paletai.generation.authoring import author_game
from paletai.generation.providers.base import (
    GameProvider,
    GenerationRequest,
    InvalidGameError,
    ProviderAuthError,
)
from paletai.generation.validation import validate_game_html
from tests.generation.providers.fake_llm import (
    VALID_GAME_HTML,
    FakeLLM,
    ProgressLog,
    error,
    invalid_game,
    ok_game,
)

REQUEST = GenerationRequest(prompt="Create a simple dodge game", seed="g1")
FLAVOURS = ["openai", "azure-openai", "anthropic"]


def _last_user_text(body: dict[str, object]) -> str:
    messages = body["messages"]
    assert isinstance(messages, list)
    return str(messages[-1]["content"])


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_valid_game_needs_no_repair(
    flavour: str,
    fake: FakeLLM,
    provider_for: Callable[..., GameProvider],
    progress: ProgressLog,
) -> None:
    draft = await author_game(provider_for(flavour), REQUEST, progress)

    assert draft.html == VALID_GAME_HTML
    assert len(fake.requests) == 1
    assert progress.stages() == ["generating", "validating"]


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_invalid_game_is_repaired_once(
    flavour: str,
    fake: FakeLLM,
    provider_for: Callable[..., GameProvider],
    progress: ProgressLog,
) -> None:
    fake.plan(invalid_game(), ok_game(usage=(300, 700)))

    draft = await author_game(provider_for(flavour), REQUEST, progress)

    assert draft.html == VALID_GAME_HTML
    assert validate_game_html(draft.html) == []
    assert draft.usage == {"input_tokens": 400, "output_tokens": 1200}
    assert progress.stages() == ["generating", "validating", "repairing", "validating"]
    repair_request = _last_user_text(fake.requests[1].body)
    assert "external script" in repair_request
    assert "cdn.example.com/engine.js" in repair_request  # the broken HTML is sent back
    assert REQUEST.prompt in repair_request


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_game_still_invalid_after_repair_fails_clearly(
    flavour: str,
    fake: FakeLLM,
    provider_for: Callable[..., GameProvider],
    progress: ProgressLog,
) -> None:
    fake.plan(invalid_game(), invalid_game(), ok_game())

    with pytest.raises(InvalidGameError) as caught:
        await author_game(provider_for(flavour), REQUEST, progress)

    assert len(fake.requests) == 2  # one repair round, no more
    message = caught.value.message
    assert message.startswith("the generated game failed validation: ")
    assert "external script <script src='https://cdn.example.com/engine.js'>" in message
    assert "no playable root" in message


async def test_provider_errors_pass_through(
    fake: FakeLLM, provider_for: Callable[..., GameProvider], progress: ProgressLog
) -> None:
    fake.plan(error(401))

    with pytest.raises(ProviderAuthError):
        await author_game(provider_for("openai"), REQUEST, progress)

    assert progress.stages() == ["generating"]

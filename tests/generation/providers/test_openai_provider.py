"""OpenAI and Azure OpenAI through the real SDK against the fake server."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from paletai.generation.prompts import CONTINUE_PROMPT, GAME_SCHEMA, SYSTEM_PROMPT
from paletai.generation.providers.base import GameProvider, GenerationRequest, ProviderError
from tests.generation.providers.fake_llm import (
    VALID_GAME_HTML,
    FakeLLM,
    ProgressLog,
    game,
    ok_game,
    raw_json,
    rest,
    text,
    truncated,
)

REQUEST = GenerationRequest(prompt="Create a simple dodge game", seed="g1")


async def test_openai_success_sends_strict_schema(
    fake: FakeLLM, provider_for: Callable[..., GameProvider], progress: ProgressLog, test_key: str
) -> None:
    fake.plan(ok_game(game("Rock Dodge")))
    provider = provider_for("openai")

    draft = await provider.generate(REQUEST, progress)

    assert (draft.title, draft.html) == ("Rock Dodge", VALID_GAME_HTML)
    assert (draft.provider, draft.model) == ("openai", "gpt-fake")
    assert draft.usage == {"input_tokens": 100, "output_tokens": 500}
    [sent] = fake.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {test_key}"
    assert sent.body["model"] == "gpt-fake"
    assert sent.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "game", "strict": True, "schema": GAME_SCHEMA},
    }
    assert sent.body["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert REQUEST.prompt in sent.body["messages"][1]["content"]
    assert sent.body["max_completion_tokens"] == 16000
    assert "stream" not in sent.body


async def test_azure_uses_deployment_path_and_api_key_header(
    fake: FakeLLM, provider_for: Callable[..., GameProvider], progress: ProgressLog, test_key: str
) -> None:
    provider = provider_for("azure-openai")

    draft = await provider.generate(REQUEST, progress)

    assert (draft.provider, draft.model) == ("azure-openai", "games-deployment")
    [sent] = fake.requests
    assert sent.path == "/openai/deployments/games-deployment/chat/completions"
    assert sent.query == {"api-version": "2024-10-21"}
    assert sent.headers["api-key"] == test_key
    assert "authorization" not in sent.headers
    assert sent.body["response_format"]["json_schema"]["strict"] is True


async def test_remix_sends_parent_html(
    fake: FakeLLM, provider_for: Callable[..., GameProvider], progress: ProgressLog
) -> None:
    remix = GenerationRequest(
        prompt="make the rocks pink", seed="g2", parent_html="<canvas id=old>", parent_title="Old"
    )
    await provider_for("openai").generate(remix, progress)

    user = fake.requests[0].body["messages"][1]["content"]
    assert "make the rocks pink" in user
    assert "<canvas id=old>" in user
    assert "'Old'" in user


@pytest.mark.parametrize("flavour", ["openai", "azure-openai"])
async def test_streaming_reports_progress_and_usage(
    flavour: str,
    fake: FakeLLM,
    provider_for: Callable[..., GameProvider],
    progress: ProgressLog,
) -> None:
    # ~2 KB in 100-char chunks, 40 ms apart: about 0.8 s of streaming.
    fake.plan(ok_game(chunk_size=100, chunk_delay=0.04))
    provider = provider_for(flavour, ENABLE_STREAMING=True)

    draft = await provider.generate(REQUEST, progress)

    assert draft.html == VALID_GAME_HTML
    assert draft.usage == {"input_tokens": 100, "output_tokens": 500}
    sent = fake.requests[0].body
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert set(progress.stages()) == {"generating"}
    chars = [info["chars"] for _, info in progress.calls]
    tokens = [info["tokens"] for _, info in progress.calls]
    assert len(progress.calls) >= 3  # first chunk, at least one 0.5 s tick, the end
    assert chars == sorted(chars)
    assert tokens == sorted(tokens)
    assert chars[-1] == len(json.dumps(game()))


@pytest.mark.parametrize("streaming", [False, True])
async def test_truncated_answer_is_continued_once(
    streaming: bool,
    fake: FakeLLM,
    provider_for: Callable[..., GameProvider],
    progress: ProgressLog,
) -> None:
    fake.plan(truncated(cut=0.4), rest())
    provider = provider_for("openai", ENABLE_STREAMING=streaming)

    draft = await provider.generate(REQUEST, progress)

    assert draft.html == VALID_GAME_HTML
    assert draft.title == "Fake Dodge"
    assert draft.usage == {"input_tokens": 200, "output_tokens": 1000}
    first, second = fake.requests
    messages = second.body["messages"]
    assert messages[:2] == first.body["messages"]
    assert messages[2]["role"] == "assistant"
    assert json.dumps(game()).startswith(messages[2]["content"])
    assert messages[3] == {"role": "user", "content": CONTINUE_PROMPT}
    assert "response_format" not in second.body


async def test_truncated_twice_gives_up_after_one_continuation(
    fake: FakeLLM, provider_for: Callable[..., GameProvider], progress: ProgressLog
) -> None:
    # The continuation is itself cut: what is left is a game without its end.
    fake.plan(truncated(cut=0.3), truncated(cut=0.3))
    provider = provider_for("openai")

    draft = await provider.generate(REQUEST, progress)

    assert len(fake.requests) == 2
    assert draft.html != VALID_GAME_HTML


async def test_malformed_json_falls_back_to_fenced_html(
    fake: FakeLLM, provider_for: Callable[..., GameProvider], progress: ProgressLog
) -> None:
    fake.plan(text(f'{{"title": "oops", Here is the game:\n```html\n{VALID_GAME_HTML}```\nEnjoy!'))
    provider = provider_for("openai")

    draft = await provider.generate(REQUEST, progress)

    assert draft.html == VALID_GAME_HTML.strip()
    assert draft.title == "Fake Dodge"  # from <title>


async def test_answer_without_game_is_a_retryable_error(
    fake: FakeLLM, provider_for: Callable[..., GameProvider], progress: ProgressLog
) -> None:
    fake.plan(text("I'd love to help, but what kind of game?"))

    with pytest.raises(ProviderError) as caught:
        await provider_for("openai").generate(REQUEST, progress)

    assert caught.value.retryable
    assert "without a game" in caught.value.message


async def test_refusal_is_reported(
    fake: FakeLLM, provider_for: Callable[..., GameProvider], progress: ProgressLog
) -> None:
    body = {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-fake",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": None, "refusal": "Not that one."},
            }
        ],
    }
    fake.plan(raw_json(body))

    with pytest.raises(ProviderError, match="declined to write this game: Not that one"):
        await provider_for("openai").generate(REQUEST, progress)


async def test_model_without_structured_outputs_falls_back_to_text(
    fake: FakeLLM, provider_for: Callable[..., GameProvider], progress: ProgressLog
) -> None:
    refused = {
        "error": {
            "message": "Invalid parameter: 'response_format' of type 'json_schema' is not "
            "supported with this model.",
            "type": "invalid_request_error",
            "param": "response_format",
            "code": None,
        }
    }
    fake.plan(raw_json(refused, status=400), text(f"```html\n{VALID_GAME_HTML}```"))
    provider = provider_for("azure-openai")

    draft = await provider.generate(REQUEST, progress)
    await provider.generate(REQUEST, progress)

    assert draft.html == VALID_GAME_HTML.strip()
    first, second, third = fake.requests
    assert "response_format" in first.body
    assert "response_format" not in second.body
    assert "response_format" not in third.body  # remembered


async def test_azure_content_filter_is_named(
    fake: FakeLLM, provider_for: Callable[..., GameProvider], progress: ProgressLog
) -> None:
    body = {
        "error": {
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's "
            "content management policy.",
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
        }
    }
    fake.plan(raw_json(body, status=400))

    with pytest.raises(ProviderError) as caught:
        await provider_for("azure-openai").generate(REQUEST, progress)

    assert caught.value.message == "the AI provider's content filter blocked this prompt"
    assert not caught.value.retryable
    assert len(fake.requests) == 1

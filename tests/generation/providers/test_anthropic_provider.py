"""Anthropic through the real SDK against the fake server."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from paletai.generation.prompts import CONTINUE_PROMPT, GAME_SCHEMA, SYSTEM_PROMPT
from paletai.generation.providers.base import GameProvider, GenerationRequest
from tests.generation.providers.fake_llm import (
    VALID_GAME_HTML,
    FakeLLM,
    ProgressLog,
    game,
    ok_game,
    received_key,
    rest,
    text,
    truncated,
)

REQUEST = GenerationRequest(prompt="Create a simple dodge game", seed="g1")


async def test_success_forces_the_submit_game_tool(
    fake: FakeLLM, provider_for: Callable[..., GameProvider], progress: ProgressLog, test_key: str
) -> None:
    fake.plan(ok_game(game("Rock Dodge")))
    provider = provider_for("anthropic")

    draft = await provider.generate(REQUEST, progress)

    assert (draft.title, draft.html) == ("Rock Dodge", VALID_GAME_HTML)
    assert (draft.provider, draft.model) == ("anthropic", "claude-fake")
    assert draft.usage == {"input_tokens": 100, "output_tokens": 500}
    [sent] = fake.requests
    assert sent.path == "/v1/messages"
    # Older SDKs send x-api-key, newer ones a Bearer token: either way, our key.
    assert received_key(sent) == test_key
    assert "anthropic-version" in sent.headers
    body = sent.body
    assert body["model"] == "claude-fake"
    assert body["system"] == SYSTEM_PROMPT
    assert body["max_tokens"] == 16000
    assert body["tools"] == [
        {
            "name": "submit_game",
            "description": body["tools"][0]["description"],
            "input_schema": GAME_SCHEMA,
        }
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "submit_game"}
    assert "thinking" not in body
    assert REQUEST.prompt in body["messages"][0]["content"]


async def test_streaming_reports_progress_from_tool_json(
    fake: FakeLLM, provider_for: Callable[..., GameProvider], progress: ProgressLog
) -> None:
    fake.plan(ok_game(chunk_size=100, chunk_delay=0.04))
    provider = provider_for("anthropic", ENABLE_STREAMING=True)

    draft = await provider.generate(REQUEST, progress)

    assert draft.html == VALID_GAME_HTML
    assert draft.usage == {"input_tokens": 100, "output_tokens": 500}
    assert fake.requests[0].body["stream"] is True
    chars = [info["chars"] for _, info in progress.calls]
    assert len(progress.calls) >= 3
    assert chars == sorted(chars)
    assert chars[-1] == len(json.dumps(game()))


@pytest.mark.parametrize("streaming", [False, True])
async def test_cut_tool_call_is_continued_as_text(
    streaming: bool,
    fake: FakeLLM,
    provider_for: Callable[..., GameProvider],
    progress: ProgressLog,
) -> None:
    fake.plan(truncated(cut=0.6), rest())
    provider = provider_for("anthropic", ENABLE_STREAMING=streaming)

    draft = await provider.generate(REQUEST, progress)

    assert draft.html == VALID_GAME_HTML
    assert (draft.title, draft.controls) == ("Fake Dodge", "Arrow keys or drag")
    assert draft.usage == {"input_tokens": 200, "output_tokens": 1000}
    first, second = fake.requests
    messages = second.body["messages"]
    assert messages[0] == first.body["messages"][0]
    assert messages[1]["role"] == "assistant"
    cut_at = int(len(VALID_GAME_HTML) * 0.6)
    assert messages[1]["content"] == "```html\n" + VALID_GAME_HTML[:cut_at]
    assert messages[2] == {"role": "user", "content": CONTINUE_PROMPT}
    assert "tools" not in second.body
    assert "tool_choice" not in second.body


@pytest.mark.parametrize("streaming", [False, True])
async def test_thinking_offers_the_tool_and_accepts_fenced_html(
    streaming: bool,
    fake: FakeLLM,
    provider_for: Callable[..., GameProvider],
    progress: ProgressLog,
) -> None:
    provider = provider_for("anthropic", ENABLE_STREAMING=streaming, STREAMING_THINKING_TOKENS=2000)

    draft = await provider.generate(REQUEST, progress)

    assert draft.html == VALID_GAME_HTML.strip()
    body = fake.requests[0].body
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    assert body["tool_choice"] == {"type": "auto"}
    assert body["max_tokens"] == 16000 + 2000
    if streaming:
        assert any("thinking_chars" in info for _, info in progress.calls)


async def test_thinking_answer_cut_in_text_is_continued(
    fake: FakeLLM, provider_for: Callable[..., GameProvider], progress: ProgressLog
) -> None:
    fake.plan(truncated(cut=0.5), rest())
    provider = provider_for("anthropic", ENABLE_STREAMING=True, STREAMING_THINKING_TOKENS=1500)

    draft = await provider.generate(REQUEST, progress)

    assert draft.html == VALID_GAME_HTML.strip()
    follow = fake.requests[1].body
    assert "thinking" not in follow
    assert follow["messages"][1]["content"].startswith("```html\n<!DOCTYPE html>")


async def test_text_answer_with_fenced_html_is_accepted(
    fake: FakeLLM, provider_for: Callable[..., GameProvider], progress: ProgressLog
) -> None:
    fake.plan(text(f"Sure! Here it is.\n\n```html\n{VALID_GAME_HTML}```"))

    draft = await provider_for("anthropic").generate(REQUEST, progress)

    assert draft.html == VALID_GAME_HTML.strip()
    assert draft.title == "Fake Dodge"

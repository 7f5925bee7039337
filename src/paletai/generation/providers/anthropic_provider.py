"""Games from Anthropic: the Messages API with a forced `submit_game` tool call.

Extended thinking (STREAMING_THINKING_TOKENS > 0) cannot be combined with a forced tool
choice, so then the tool is offered with tool_choice auto and a game in a fenced ```html
block of the text is accepted as well.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from anthropic import AsyncAnthropic, omit
from anthropic.types import (
    Message,
    MessageParam,
    ThinkingConfigEnabledParam,
    ToolChoiceParam,
    ToolParam,
)

from paletai.config import Settings
from paletai.generation.prompts import (
    ANSWER_TOOL,
    CONTINUE_PROMPT,
    GAME_SCHEMA,
    SYSTEM_PROMPT,
    TOOL_DESCRIPTION,
    TOOL_NAME,
    generate_prompt,
    repair_prompt,
)
from paletai.generation.providers.base import (
    GameDraft,
    GenerationRequest,
    Progress,
    ProviderAuthError,
    ProviderError,
)
from paletai.generation.providers.common import (
    HealthFromRecentCalls,
    StreamProgress,
    add_usage,
    make_draft,
    no_game_error,
    sdk_timeout,
)
from paletai.generation.providers.retry import RetryPolicy, call_with_retries
from paletai.generation.validation import (
    GameFields,
    fields_from_mapping,
    parse_game_answer,
    partial_json,
    strip_fences,
)

MIN_THINKING_BUDGET = 1024  # the API's minimum budget_tokens

SUBMIT_TOOL: ToolParam = {
    "name": TOOL_NAME,
    "description": TOOL_DESCRIPTION,
    "input_schema": GAME_SCHEMA,
}


@dataclass
class _Answer:
    """One Messages call, streamed or not."""

    text: str  # the text blocks, joined
    tool_input: dict[str, Any] | None  # the submit_game call's input, if any
    tool_json: str | None  # its raw JSON as streamed (complete even where input is cut)
    stop_reason: str | None
    usage: dict[str, int] = field(default_factory=dict)
    chunks: int = 0  # streamed chunks (about one token each)

    @property
    def output_chars(self) -> int:
        return len(self.text) + len(self.tool_json or "")


class AnthropicProvider(HealthFromRecentCalls):
    """Author games with Anthropic's Claude models."""

    name = "anthropic"

    def __init__(self, settings: Settings, *, client: AsyncAnthropic | None = None) -> None:
        self.model = settings.ANTHROPIC_MODEL
        self._streaming = settings.ENABLE_STREAMING
        self._max_tokens = settings.AI_MAX_OUTPUT_TOKENS
        budget = settings.STREAMING_THINKING_TOKENS
        self._thinking_budget = max(budget, MIN_THINKING_BUDGET) if budget > 0 else 0
        self._policy = RetryPolicy.from_settings(settings)
        self._last_failure: float | None = None
        key = settings.ANTHROPIC_API_KEY
        self._configured = key is not None and bool(key.get_secret_value())
        self._client = client or AsyncAnthropic(
            api_key=key.get_secret_value() if key else "not-configured",
            base_url=settings.ANTHROPIC_BASE_URL or None,
            timeout=sdk_timeout(settings.AI_TIMEOUT_SECONDS),
            max_retries=0,  # our RetryPolicy is the only retry policy
        )

    async def generate(self, request: GenerationRequest, progress: Progress) -> GameDraft:
        return await self._author(request, generate_prompt(request), progress)

    async def repair(
        self,
        request: GenerationRequest,
        draft: GameDraft,
        complaints: list[str],
        progress: Progress,
    ) -> GameDraft:
        return await self._author(request, repair_prompt(request, draft, complaints), progress)

    async def aclose(self) -> None:
        await self._client.close()

    # --- internals ----------------------------------------------------------------------

    async def _author(
        self, request: GenerationRequest, prompt: str, progress: Progress
    ) -> GameDraft:
        if not self._configured:
            raise ProviderAuthError("the AI provider has no API key (set ANTHROPIC_API_KEY)")
        messages: list[MessageParam] = [
            {"role": "user", "content": f"{prompt}\n\n{ANSWER_TOOL}"},
        ]
        try:
            answer = await self._call(messages, progress, with_tool=True)
            fields, usage = self._read(answer, request), answer.usage
            if answer.stop_reason == "max_tokens":
                fields, more = await self._continue(request, messages, answer, progress)
                usage = add_usage(usage, more)
        except ProviderError as exc:
            if exc.retryable:
                self._last_failure = time.monotonic()
            raise
        self._last_failure = None
        if fields is None:
            raise no_game_error(self.name)
        return make_draft(fields, provider=self.name, model=self.model, usage=usage)

    def _read(self, answer: _Answer, request: GenerationRequest) -> GameFields | None:
        if answer.tool_input is not None:
            fields = fields_from_mapping(answer.tool_input, request.prompt)
            if fields is not None:
                return fields
        if answer.tool_json:
            fields = fields_from_mapping(partial_json(answer.tool_json), request.prompt)
            if fields is not None:
                return fields
        return parse_game_answer(answer.text, request.prompt)

    async def _continue(
        self,
        request: GenerationRequest,
        messages: list[MessageParam],
        answer: _Answer,
        progress: Progress,
    ) -> tuple[GameFields | None, dict[str, int]]:
        """One continuation of an answer cut at max_tokens: ask for the rest, in plain text."""
        labels: dict[str, Any] = {}
        if answer.tool_json is not None or answer.tool_input is not None:
            # A cut tool call cannot be replayed, so its HTML so far is replayed as text.
            labels = partial_json(answer.tool_json) if answer.tool_json else {}
            labels = labels or dict(answer.tool_input or {})
            html_so_far = str(labels.get("html") or "")
            shown = f"```html\n{html_so_far}"
        else:
            html_so_far = ""
            shown = answer.text or "```html\n"
        follow: list[MessageParam] = [
            *messages,
            {"role": "assistant", "content": shown},
            {"role": "user", "content": CONTINUE_PROMPT},
        ]
        counted = (answer.output_chars, answer.chunks)
        rest = await self._call(follow, progress, with_tool=False, counted=counted)
        tail = strip_fences(rest.text)
        if labels:
            return fields_from_mapping({**labels, "html": html_so_far + tail}, request.prompt), (
                rest.usage
            )
        return parse_game_answer(answer.text + tail, request.prompt), rest.usage

    async def _call(
        self,
        messages: list[MessageParam],
        progress: Progress,
        *,
        with_tool: bool,
        counted: tuple[int, int] = (0, 0),
    ) -> _Answer:
        tools: list[ToolParam] | Any = omit
        tool_choice: ToolChoiceParam | Any = omit
        thinking: ThinkingConfigEnabledParam | Any = omit
        max_tokens = self._max_tokens
        if with_tool:
            tools = [SUBMIT_TOOL]
            if self._thinking_budget:
                # Forced tool use is refused together with thinking: offer the tool instead.
                tool_choice = {"type": "auto"}
                thinking = {"type": "enabled", "budget_tokens": self._thinking_budget}
                max_tokens += self._thinking_budget
            else:
                tool_choice = {"type": "tool", "name": TOOL_NAME}
        kwargs: dict[str, Any] = {
            "model": self.model,
            "max_tokens": max_tokens,
            "system": SYSTEM_PROMPT,
            "messages": messages,
            "tools": tools,
            "tool_choice": tool_choice,
            "thinking": thinking,
        }
        if self._streaming:

            async def call() -> _Answer:
                return await self._stream_once(kwargs, progress, counted)

        else:

            async def call() -> _Answer:
                return _answer_of(await self._client.messages.create(**kwargs), None)

        answer = await call_with_retries(call, self._policy, target=f"model {self.model!r}")
        if answer.stop_reason == "refusal":
            raise ProviderError("the model declined to write this game")
        return answer

    async def _stream_once(
        self, kwargs: dict[str, Any], progress: Progress, counted: tuple[int, int]
    ) -> _Answer:
        ticker = StreamProgress(progress, chars=counted[0], tokens=counted[1])
        tool_json: dict[int, list[str]] = {}
        async with self._client.messages.stream(**kwargs) as stream:
            async for event in stream:
                if event.type == "content_block_start":
                    block = event.content_block
                    if block.type == "tool_use" and block.name == TOOL_NAME:
                        tool_json[event.index] = []
                elif event.type == "content_block_delta":
                    delta = event.delta
                    if delta.type == "text_delta":
                        await ticker.chunk(chars=len(delta.text))
                    elif delta.type == "input_json_delta":
                        if event.index in tool_json:
                            tool_json[event.index].append(delta.partial_json)
                        await ticker.chunk(chars=len(delta.partial_json))
                    elif delta.type == "thinking_delta":
                        await ticker.chunk(thinking_chars=len(delta.thinking))
            message = await stream.get_final_message()
        await ticker.report()
        raw = "".join("".join(parts) for parts in tool_json.values()) if tool_json else None
        answer = _answer_of(message, raw)
        answer.chunks = ticker.tokens
        return answer


def _answer_of(message: Message, tool_json: str | None) -> _Answer:
    texts: list[str] = []
    tool_input: dict[str, Any] | None = None
    for block in message.content:
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "tool_use" and block.name == TOOL_NAME:
            if isinstance(block.input, dict):
                tool_input = dict(block.input)
    usage = {
        "input_tokens": message.usage.input_tokens,
        "output_tokens": message.usage.output_tokens,
    }
    return _Answer(
        text="".join(texts),
        tool_input=tool_input,
        tool_json=tool_json,
        stop_reason=message.stop_reason,
        usage=usage,
    )

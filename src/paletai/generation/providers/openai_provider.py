"""Games from OpenAI or Azure OpenAI: chat completions with a strict JSON schema.

One provider class for both: Azure differs only in the client (endpoint, `api-key` header,
api-version, deployment path) and in that `model` is the deployment name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from openai import AsyncAzureOpenAI, AsyncOpenAI, omit
from openai.types.chat import ChatCompletionMessageParam
from openai.types.shared_params import ResponseFormatJSONSchema

from paletai.config import Settings
from paletai.generation.prompts import (
    ANSWER_JSON,
    CONTINUE_PROMPT,
    GAME_SCHEMA,
    SCHEMA_NAME,
    SYSTEM_PROMPT,
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
from paletai.generation.providers.retry import (
    ProviderRequestError,
    RetryPolicy,
    call_with_retries,
    logger,
)
from paletai.generation.validation import parse_game_answer, strip_fences

# After a failed call, `check()` reports "degraded" for this long.

RESPONSE_FORMAT: ResponseFormatJSONSchema = {
    "type": "json_schema",
    "json_schema": {"name": SCHEMA_NAME, "strict": True, "schema": GAME_SCHEMA},
}


@dataclass
class _Answer:
    """One chat completion, streamed or not."""

    text: str
    finish_reason: str | None
    usage: dict[str, int] = field(default_factory=dict)
    refusal: str | None = None
    chunks: int = 0  # streamed chunks (about one token each)


class OpenAIProvider(HealthFromRecentCalls):
    """Author games with OpenAI (`name="openai"`) or Azure OpenAI (`name="azure-openai"`)."""

    def __init__(
        self, settings: Settings, *, azure: bool = False, client: AsyncOpenAI | None = None
    ) -> None:
        self.name = "azure-openai" if azure else "openai"
        self.model = settings.AZURE_OPENAI_MODEL if azure else settings.OPENAI_MODEL
        self._streaming = settings.ENABLE_STREAMING
        self._max_tokens = settings.AI_MAX_OUTPUT_TOKENS
        self._policy = RetryPolicy.from_settings(settings)
        self._target = f"Azure deployment {self.model!r}" if azure else f"model {self.model!r}"
        self._last_failure: float | None = None
        self._structured = True  # until the model refuses response_format json_schema
        key = settings.AZURE_OPENAI_API_KEY if azure else settings.OPENAI_API_KEY
        self._key_setting = "AZURE_OPENAI_API_KEY" if azure else "OPENAI_API_KEY"
        self._configured = key is not None and bool(key.get_secret_value())
        if azure and not settings.AZURE_OPENAI_ENDPOINT:
            self._configured = False
        secret = key.get_secret_value() if key else "not-configured"
        if client is not None:
            self._client = client
        elif azure:
            self._client = AsyncAzureOpenAI(
                azure_endpoint=settings.AZURE_OPENAI_ENDPOINT or "http://not-configured.invalid",
                api_key=secret,
                api_version=settings.AZURE_OPENAI_API_VERSION,
                timeout=sdk_timeout(settings.AI_TIMEOUT_SECONDS),
                max_retries=0,  # our RetryPolicy is the only retry policy
            )
        else:
            self._client = AsyncOpenAI(
                api_key=secret,
                base_url=settings.OPENAI_BASE_URL or None,
                timeout=sdk_timeout(settings.AI_TIMEOUT_SECONDS),
                max_retries=0,
            )

    async def generate(self, request: GenerationRequest, progress: Progress) -> GameDraft:
        prompt = f"{generate_prompt(request)}\n\n{ANSWER_JSON}"
        return await self._author(request, prompt, progress)

    async def repair(
        self,
        request: GenerationRequest,
        draft: GameDraft,
        complaints: list[str],
        progress: Progress,
    ) -> GameDraft:
        prompt = f"{repair_prompt(request, draft, complaints)}\n\n{ANSWER_JSON}"
        return await self._author(request, prompt, progress)

    async def aclose(self) -> None:
        await self._client.close()

    # --- internals ----------------------------------------------------------------------

    async def _author(
        self, request: GenerationRequest, prompt: str, progress: Progress
    ) -> GameDraft:
        if not self._configured:
            raise ProviderAuthError(f"the AI provider is not configured (set {self._key_setting})")
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": prompt},
        ]
        try:
            answer = await self._first_answer(messages, progress)
            text, usage = answer.text, answer.usage
            if answer.finish_reason == "length":
                # One continuation, in plain text: the schema would force a fresh object.
                messages += [
                    {"role": "assistant", "content": text},
                    {"role": "user", "content": CONTINUE_PROMPT},
                ]
                rest = await self._complete(
                    messages, progress, structured=False, counted=(len(text), answer.chunks)
                )
                text += strip_fences(rest.text)
                usage = add_usage(usage, rest.usage)
        except ProviderError as exc:
            if exc.retryable:
                self._last_failure = time.monotonic()
            raise
        self._last_failure = None
        fields = parse_game_answer(text, request.prompt)
        if fields is None:
            raise no_game_error(self.name)
        return make_draft(fields, provider=self.name, model=self.model, usage=usage)

    async def _first_answer(
        self, messages: list[ChatCompletionMessageParam], progress: Progress
    ) -> _Answer:
        """Structured output, unless the model or API version refuses `response_format`:
        then plain text (the prompt still asks for the JSON; a fenced block is accepted)."""
        if self._structured:
            try:
                return await self._complete(messages, progress, structured=True)
            except ProviderRequestError as exc:
                if not exc.about_response_format:
                    raise
                self._structured = False
                logger.warning(
                    "%s refuses json_schema structured outputs; using plain text from now on",
                    self._target,
                )
        return await self._complete(messages, progress, structured=False)

    async def _complete(
        self,
        messages: list[ChatCompletionMessageParam],
        progress: Progress,
        *,
        structured: bool,
        counted: tuple[int, int] = (0, 0),
    ) -> _Answer:
        if self._streaming:

            async def call() -> _Answer:
                return await self._stream_once(messages, progress, structured, counted)

        else:

            async def call() -> _Answer:
                return await self._create_once(messages, structured)

        answer = await call_with_retries(call, self._policy, target=self._target)
        if answer.refusal:
            raise ProviderError(f"the model declined to write this game: {answer.refusal[:200]}")
        if answer.finish_reason == "content_filter":
            raise ProviderError("the AI provider's content filter blocked this game")
        return answer

    async def _create_once(
        self, messages: list[ChatCompletionMessageParam], structured: bool
    ) -> _Answer:
        completion = await self._client.chat.completions.create(
            model=self.model,
            messages=messages,
            max_completion_tokens=self._max_tokens,
            response_format=RESPONSE_FORMAT if structured else omit,
        )
        if not completion.choices:
            raise ProviderError("the AI provider answered with no choices", retryable=True)
        choice = completion.choices[0]
        usage: dict[str, int] = {}
        if completion.usage is not None:
            usage = {
                "input_tokens": completion.usage.prompt_tokens,
                "output_tokens": completion.usage.completion_tokens,
            }
        return _Answer(
            text=choice.message.content or "",
            finish_reason=choice.finish_reason,
            usage=usage,
            refusal=choice.message.refusal,
        )

    async def _stream_once(
        self,
        messages: list[ChatCompletionMessageParam],
        progress: Progress,
        structured: bool,
        counted: tuple[int, int],
    ) -> _Answer:
        ticker = StreamProgress(progress, chars=counted[0], tokens=counted[1])
        parts: list[str] = []
        refusal: list[str] = []
        finish_reason: str | None = None
        usage: dict[str, int] = {}
        stream = await self._client.chat.completions.create(
            model=self.model,
            messages=messages,
            max_completion_tokens=self._max_tokens,
            response_format=RESPONSE_FORMAT if structured else omit,
            stream=True,
            stream_options={"include_usage": True},
        )
        async with stream:
            async for chunk in stream:
                if chunk.usage is not None:
                    usage = {
                        "input_tokens": chunk.usage.prompt_tokens,
                        "output_tokens": chunk.usage.completion_tokens,
                    }
                for choice in chunk.choices:
                    if choice.index != 0:
                        continue
                    if choice.delta.content:
                        parts.append(choice.delta.content)
                        await ticker.chunk(chars=len(choice.delta.content))
                    if choice.delta.refusal:
                        refusal.append(choice.delta.refusal)
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
        await ticker.report()
        return _Answer(
            text="".join(parts),
            finish_reason=finish_reason,
            usage=usage,
            refusal="".join(refusal) or None,
            chunks=ticker.tokens,
        )

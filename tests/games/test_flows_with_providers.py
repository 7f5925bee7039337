"""The API with a real SDK provider (OpenAI, against the fake LLM server): streaming progress seen
by a poller, and provider faults ending in clear task states."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from paletai.config import Settings
from tests.conftest import create_user, running_app, wait_for_task
from tests.generation.providers.fake_llm import FakeLLM, error, invalid_game, ok_game


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    with FakeLLM() as fake:
        yield fake


def openai_settings(
    settings_with: Callable[..., Settings], fake: FakeLLM, **extra: object
) -> Settings:
    return settings_with(
        AI_PROVIDER="openai",
        OPENAI_API_KEY="sk-test-secret-key-123",
        OPENAI_BASE_URL=fake.openai_base_url,
        OPENAI_MODEL="fake-model",
        AI_RETRY_BASE_SECONDS=0.01,
        AI_MAX_RETRIES=2,
        **extra,
    )


async def test_streaming_progress_is_visible_to_a_poller(
    settings_with: Callable[..., Settings], fake_llm: FakeLLM
) -> None:
    fake_llm.plan(ok_game(chunk_delay=0.03, chunk_size=50))
    settings = openai_settings(settings_with, fake_llm, ENABLE_STREAMING=True)
    async with running_app(settings) as (_, client):
        user = await create_user(client)
        task_id = (
            await client.post("/games", json={"prompt": "dodge rocks"}, headers=user.headers)
        ).json()["task_id"]
        seen_chars: list[int] = []
        stages: list[str] = []
        for _ in range(400):
            body = (await client.get(f"/tasks/{task_id}", headers=user.headers)).json()
            stages.append(body["stage"])
            if body["stage"] == "generating" and "chars" in body["progress"]:
                seen_chars.append(body["progress"]["chars"])
            if body["status"] in ("succeeded", "failed"):
                break
            await asyncio.sleep(0.05)
        assert body["status"] == "succeeded", body
        assert len(set(seen_chars)) >= 2, "the poller should see the count of characters grow"
        assert seen_chars == sorted(seen_chars)
        game = (await client.get(f"/games/{body['game_id']}")).json()
        assert game["provider"] == "openai"
        assert game["model"] == "fake-model"
        assert game["title"] == "Fake Dodge"


async def test_rejected_key_fails_the_task_and_gives_the_prompt_back(
    settings_with: Callable[..., Settings], fake_llm: FakeLLM
) -> None:
    fake_llm.plan(error(401))
    async with running_app(openai_settings(settings_with, fake_llm)) as (_, client):
        user = await create_user(client)
        task_id = (
            await client.post("/games", json={"prompt": "snake"}, headers=user.headers)
        ).json()["task_id"]
        task = await wait_for_task(client, user, task_id)
        assert task["status"] == "failed"
        assert task["error"] == "the AI provider rejected the API key"
        assert "sk-test" not in str(task)
        assert len(fake_llm.requests) == 1
        me = (await client.get("/auth/me", headers=user.headers)).json()
        assert me["prompts_used_today"] == 0


async def test_server_errors_fail_after_capped_retries(
    settings_with: Callable[..., Settings], fake_llm: FakeLLM
) -> None:
    fake_llm.plan(*[error(500)] * 3)
    async with running_app(openai_settings(settings_with, fake_llm)) as (_, client):
        user = await create_user(client)
        task_id = (
            await client.post("/games", json={"prompt": "pong"}, headers=user.headers)
        ).json()["task_id"]
        task = await wait_for_task(client, user, task_id)
        assert task["status"] == "failed"
        assert "HTTP 500" in str(task["error"])
        assert len(fake_llm.requests) == 3  # 1 + AI_MAX_RETRIES
        assert (await client.get("/games/feed")).json()["items"] == []


async def test_invalid_game_is_repaired_then_published(
    settings_with: Callable[..., Settings], fake_llm: FakeLLM
) -> None:
    fake_llm.plan(invalid_game(), ok_game())
    async with running_app(openai_settings(settings_with, fake_llm)) as (_, client):
        user = await create_user(client)
        task_id = (
            await client.post("/games", json={"prompt": "dodge"}, headers=user.headers)
        ).json()["task_id"]
        task = await wait_for_task(client, user, task_id)
        assert task["status"] == "succeeded", task
        assert len(fake_llm.requests) == 2
        repair_request = str(fake_llm.requests[1].body)
        assert "script" in repair_request.lower()

"""The operator kit's one client of our HTTP API (ops/checks/api.py), over a fake transport."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from paletai.ops.checks import api as api_module
from paletai.ops.checks.api import ApiClient, ApiError

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def fast_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_module, "POLL_SECONDS", 0.001)


def client(handler: Handler) -> ApiClient:
    return ApiClient("http://paletai.test/", transport=httpx.MockTransport(handler))


def task_states(*states: tuple[str, str]) -> tuple[Handler, list[httpx.Request]]:
    """A /tasks/{id} that walks through `states` (then stays at the last)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status, stage = states[min(len(seen), len(states)) - 1]
        body = {"task_id": "t1", "status": status, "stage": stage}
        if status == "succeeded":
            body["game_id"] = "g1"
        return httpx.Response(200, json=body)

    return handler, seen


async def test_wait_for_task_polls_to_the_end_with_the_token_and_reports_each_stage() -> None:
    handler, seen = task_states(
        ("queued", "queued"), ("running", "authoring"), ("running", "authoring"),
        ("running", "cover"), ("succeeded", "done"),
    )  # fmt: skip
    stages: list[tuple[str, str]] = []
    async with client(handler) as api:
        body = await api.wait_for_task(
            "t1", "tok", within=30, on_stage=lambda s, st, _t: stages.append((s, st))
        )
    assert body["status"] == "succeeded"
    assert body["game_id"] == "g1"
    assert len(seen) == 5
    assert {r.url.path for r in seen} == {"/tasks/t1"}
    assert {r.headers["authorization"] for r in seen} == {"Bearer tok"}
    assert stages == [
        ("queued", "queued"),
        ("running", "authoring"),
        ("running", "cover"),
        ("succeeded", "done"),
    ]


async def test_wait_for_task_gives_the_last_body_when_time_runs_out() -> None:
    handler, seen = task_states(("running", "authoring"))
    async with client(handler) as api:
        body = await api.wait_for_task("t1", "tok", within=0.05)
    assert body["status"] == "running"
    assert len(seen) >= 2


async def test_wait_for_tasks_maps_an_unknown_task_to_its_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/tasks/gone":
            return httpx.Response(404, json={"error": {"code": "not_found", "message": "no task"}})
        return httpx.Response(200, json={"status": "failed", "error": "boom"})

    async with client(handler) as api:
        out = await api.wait_for_tasks([("gone", "a"), ("t2", "b")], within=5)
    gone = out["gone"]
    assert isinstance(gone, ApiError)
    assert gone.status_code == 404
    assert str(gone) == "GET /tasks/gone answered 404: no task"
    assert out["t2"] == {"status": "failed", "error": "boom"}


async def test_an_error_answer_is_one_line_with_the_api_message() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            503,
            json={"error": {"code": "maintenance", "message": "writes are paused"}},
            headers={"Retry-After": "5"},
        )

    async with client(handler) as api:
        with pytest.raises(ApiError) as failed:
            await api.like("g1", "tok")
    assert str(failed.value) == "POST /games/g1/like answered 503: writes are paused"
    assert failed.value.status_code == 503
    assert failed.value.response is not None
    assert failed.value.response.headers["retry-after"] == "5"


async def test_no_answer_is_status_0_and_names_the_url() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with client(handler) as api:
        with pytest.raises(ApiError) as failed:
            await api.feed()
    assert failed.value.status_code == 0
    assert str(failed.value) == "cannot reach http://paletai.test/games/feed: connection refused"


async def test_requests_carry_what_the_api_expects() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if request.url.path == "/games":
            return httpx.Response(202, json={"task_id": "t9", "status": "queued"})
        return httpx.Response(200, json={"items": [], "next_cursor": None})

    async with client(handler) as api:
        task = await api.create_game("Create a pong game", "tok")
        await api.feed(limit=5, cursor="c1")
    assert task["task_id"] == "t9"
    create, feed = requests
    assert json.loads(create.content) == {"prompt": "Create a pong game"}
    assert create.headers["authorization"] == "Bearer tok"
    assert dict(feed.url.params) == {"limit": "5", "cursor": "c1"}
    assert "authorization" not in feed.headers  # reads are anonymous
    assert feed.headers["user-agent"] == "paletai-migrate"


async def test_a_game_without_task_id_is_an_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(202, json={"status": "queued"})

    async with client(handler) as api:
        with pytest.raises(ApiError, match="POST /games answered no task_id"):
            await api.create_game("x", "tok")


def test_a_base_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ApiError, match="not an http"):
        ApiClient("ftp://paletai.test")

"""OneSignalSender against a fake OneSignal REST API on a real socket."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from paletai.config import Settings
from paletai.notifications.onesignal import OneSignalSender
from paletai.notifications.sender import LoggingPushSender, make_push_sender
from tests.fixtures.cloud import FakeOneSignal, free_port

APP_ID = "202d4f61-1ca9-42df-9d36-bb17d8123abc"
KEY = "os_v2_app_test-rest-api-key-do-not-log"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def sender(api_url: str, http: httpx.AsyncClient) -> OneSignalSender:
    return OneSignalSender(APP_ID, KEY, api_url, http, base_delay=0.01, max_delay=0.05)


async def test_sends_the_documented_payload_with_key_auth(
    onesignal: FakeOneSignal, http: httpx.AsyncClient
) -> None:
    push = sender(onesignal.base_url, http)
    ok = await push.send(["sub-1", "sub-2", "sub-1"], "Your game is ready", "Snake!", {"g": "42"})

    assert ok is True
    [(path, headers, body)] = onesignal.requests
    assert path == "/notifications"
    assert headers["Authorization"] == f"Key {KEY}"
    assert headers["Content-Type"].startswith("application/json")
    assert body["app_id"] == APP_ID
    assert body["include_subscription_ids"] == ["sub-1", "sub-2"]
    assert body["target_channel"] == "push"
    assert body["headings"] == {"en": "Your game is ready"}
    assert body["contents"] == {"en": "Snake!"}
    assert body["data"] == {"g": "42"}
    assert len(body["idempotency_key"]) == 36
    assert await push.check() == "healthy"


async def test_legacy_api_url_keeps_the_legacy_scheme(
    onesignal: FakeOneSignal, http: httpx.AsyncClient
) -> None:
    push = sender(f"{onesignal.base_url}/api/v1/", http)
    assert await push.send(["player-1"], "h", "m", {}) is True
    [(path, headers, body)] = onesignal.requests
    assert path == "/api/v1/notifications"
    assert headers["Authorization"] == f"Basic {KEY}"
    assert body["include_player_ids"] == ["player-1"]
    assert "include_subscription_ids" not in body


async def test_server_error_is_retried_with_the_same_idempotency_key(
    onesignal: FakeOneSignal, http: httpx.AsyncClient
) -> None:
    onesignal.script = [(500, {"errors": ["oops"]}, {}), (429, {}, {"Retry-After": "0"})]
    push = sender(onesignal.base_url, http)
    assert await push.send(["sub-1"], "h", "m", {}) is True
    assert len(onesignal.requests) == 3
    keys = {body["idempotency_key"] for _, _, body in onesignal.requests}
    assert len(keys) == 1  # a retry must not send the notification twice


async def test_gives_up_after_three_attempts_without_logging_the_key(
    onesignal: FakeOneSignal, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    onesignal.script = [(503, {"errors": ["down"]}, {})] * 5
    push = sender(onesignal.base_url, http)
    with caplog.at_level(logging.DEBUG):
        assert await push.send(["sub-1"], "h", "m", {}) is False
    assert len(onesignal.requests) == 3
    assert await push.check() == "degraded"
    assert "503" in caplog.text
    assert KEY not in caplog.text


async def test_client_errors_are_not_retried(
    onesignal: FakeOneSignal, http: httpx.AsyncClient
) -> None:
    onesignal.script = [(400, {"errors": ["include_subscription_ids must be UUIDs"]}, {})]
    push = sender(onesignal.base_url, http)
    assert await push.send(["bad"], "h", "m", {}) is False
    assert len(onesignal.requests) == 1


async def test_no_recipients_is_reported_as_not_sent(
    onesignal: FakeOneSignal, http: httpx.AsyncClient
) -> None:
    unsubscribed = {"id": "", "errors": ["All included players are not subscribed"]}
    onesignal.script = [(200, unsubscribed, {})]
    push = sender(onesignal.base_url, http)
    assert await push.send(["sub-gone"], "h", "m", {}) is False
    assert await push.send([], "h", "m", {}) is False  # nothing to send: no request
    assert len(onesignal.requests) == 1


async def test_down_server_returns_false_without_raising(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    push = sender(f"http://127.0.0.1:{free_port()}", http)
    with caplog.at_level(logging.DEBUG):
        assert await push.send(["sub-1"], "h", "m", {"a": "b"}) is False
    assert await push.check() == "degraded"
    assert "ConnectError" in caplog.text
    assert KEY not in caplog.text


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


async def test_factory(http: httpx.AsyncClient) -> None:
    keys: dict[str, object] = {"ONESIGNAL_APP_ID": APP_ID, "ONESIGNAL_REST_API_KEY": KEY}
    push = make_push_sender(_settings(**keys), http=http)
    assert isinstance(push, OneSignalSender)
    assert push.configured is True
    assert push.api_url == "https://api.onesignal.com"
    assert isinstance(make_push_sender(_settings(**keys)), LoggingPushSender)  # no client
    off = make_push_sender(_settings(ONESIGNAL_APP_ID=None, ONESIGNAL_REST_API_KEY=None), http=http)
    assert isinstance(off, LoggingPushSender)
    assert await off.check() == "not_configured"
    json.dumps(push.payload(["x"], "h", "m", {}))  # serialisable as sent

"""A database outage under a running app: 503 database_unavailable with Retry-After (fast, not a
500 after the driver's 30 s), one log line per outage, and recovery without an app restart."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest

from paletai.db.embedded import EmbeddedMongo
from tests.conftest import create_user, make_settings, running_app

PYMONGO_DEFAULT_SELECTION_TIMEOUT_S = 30


def _is_database_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == "database_unavailable"
    assert "database is unreachable" in body["error"]["message"]
    assert int(response.headers["retry-after"]) > 0


async def _wait_until_ok(client: httpx.AsyncClient, path: str, within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        response = await client.get(path)
        if response.status_code == 200:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{path} never recovered"
        await asyncio.sleep(0.2)


async def _log_lines(
    caplog: pytest.LogCaptureFixture, text: str, within: float = 15.0
) -> list[str]:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        lines = [r.getMessage() for r in caplog.records if text in r.getMessage()]
        if lines or asyncio.get_running_loop().time() > deadline:
            return lines
        await asyncio.sleep(0.1)


async def test_outage_is_503_logged_once_and_recovers_without_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    server = EmbeddedMongo(tmp_path / "db")
    server.start()
    port = server.port
    settings = make_settings(server.uri, "outage", tmp_path / "data")
    try:
        async with running_app(settings) as (app, client):
            player = await create_user(client)
            assert (await client.get("/games/feed")).status_code == 200
            # The app's client gives up well before the driver's default 30 s.
            options = app.state.ctx.client.options
            assert options.server_selection_timeout <= 2
            assert options.pool_options.connect_timeout <= 2
            assert options.server_selection_timeout < PYMONGO_DEFAULT_SELECTION_TIMEOUT_S

            server.kill()
            caplog.clear()
            _is_database_unavailable(await client.get("/games/feed"))
            _is_database_unavailable(await client.get("/auth/me", headers=player.headers))
            # A write passes the maintenance middleware, which reads the database too.
            _is_database_unavailable(
                await client.post("/games", json={"prompt": "snake"}, headers=player.headers)
            )
            _is_database_unavailable(
                await client.post(
                    "/auth/register", json={"email": "x@example.com", "password": "pass word 1"}
                )
            )
            assert (await client.get("/health")).status_code == 503
            down = await _log_lines(caplog, "unreachable")
            assert len(down) == 1, [r.getMessage() for r in caplog.records]
            # No traceback per request, nor per worker poll.
            assert [r for r in caplog.records if r.exc_info] == []
            assert [r for r in caplog.records if r.name.startswith("paletai.jobs")] == []

            server = EmbeddedMongo(tmp_path / "db", port=port)
            server.start()
            await _wait_until_ok(client, "/games/feed")
            me = await client.get("/auth/me", headers=player.headers)
            assert me.status_code == 200
            assert me.json()["email"] == player.email
            # The driver publishes topology events from its own task, a moment later.
            back = await _log_lines(caplog, "reachable again")
            assert len(back) == 1
            assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1
    finally:
        server.stop()

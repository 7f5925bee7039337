"""Fixtures for the database-operations tests: a second embedded server, data factories."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from bson import Binary, Int64, ObjectId

from paletai.db.client import Client, make_client
from paletai.db.embedded import EmbeddedMongo


@pytest.fixture(scope="session")
def second_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second server, so source and target are different processes as in a migration."""
    with EmbeddedMongo(tmp_path_factory.mktemp("mongo2")) as server:
        yield server.uri


@pytest.fixture
async def second_client(second_uri: str) -> AsyncIterator[Client]:
    client = make_client(second_uri)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def fresh_name(mongo_client: Client, second_client: Client) -> AsyncIterator[str]:
    """A database name unused on both servers; dropped on both afterwards, pass or fail."""
    name = f"ops_{uuid.uuid4().hex[:10]}"
    yield name
    await mongo_client.drop_database(name)
    await second_client.drop_database(name)


async def wait_until(condition: Callable[[], object], what: str, limit_s: float = 60.0) -> None:
    """Poll `condition` until it is truthy (awaited when it gives an awaitable, e.g. a
    `find_one`); AssertionError naming `what` if it never is within `limit_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while loop.time() < deadline:
        result = condition()
        if await result if inspect.isawaitable(result) else result:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what}: not reached within {limit_s:g} s")


def with_db(uri: str, name: str) -> str:
    """The URI with a database path, as operators usually write it."""
    base, _, query = uri.partition("/?")
    return f"{base}/{name}?{query}"


def game_doc(i: int, *, size: int = 600) -> dict[str, Any]:
    """A game-like document (no binary: see docs/db-operations.md, stand-in notes)."""
    return {
        "_id": ObjectId(),
        "title": f"Game {i}",
        "prompt": f"Create a simple snake game number {i} with neon colours ✨",
        "author": {"id": str(ObjectId()), "username": f"user{i % 50}"},
        "html": "<html>" + ("x" * size) + "</html>",
        "likes_count": i % 17,
        "tags": ["arcade", "snake", str(i % 5)],
        "created_at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=i),
        "provider": "offline",
    }


def rich_docs() -> list[dict[str, Any]]:
    """Every type the round trip must keep."""
    return [
        {
            "_id": ObjectId(),
            "i32": 42,
            "i64": Int64(2**40 + 7),
            "dbl": 3.25,
            "neg": -0.5,
            "when": dt.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=dt.UTC),
            "bin": Binary(b"\x00\x01\xfe\xff", 0),
            "nested": {"z": 1, "a": {"deep": [1, "two", {"three": 3.0}]}},
            "arr": [1, [2, [3]], {"k": None}],
            "text": "héllo wörld — 你好 — 🎮",
            "flag": True,
            "none": None,
            "ref": ObjectId(),
        },
        {"_id": "string-id", "order": {"zeta": 1, "alpha": 2, "mid": 3}},
        {"_id": ObjectId(), "big": "B" * 1_000_000},
    ]

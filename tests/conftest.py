"""Shared fixtures: one embedded MongoDB (nx-27017) per test session, a fresh database per test.

Set PALETAI_TEST_MONGODB_URI to run the same tests against a real MongoDB instead.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from paletai.config import Settings
from paletai.core.context import AppContext
from paletai.db.client import Client, Database, make_client
from paletai.db.embedded import EmbeddedMongo
from paletai.db.ids import new_id
from paletai.games.repository import GamesRepository
from paletai.main import create_app

# Fixtures several test folders share (Azurite, a fake OneSignal), from one module.
pytest_plugins = ["tests.fixtures.cloud", "tests.fixtures.fake_az"]


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URI of the MongoDB the tests use: the real one if given, else an embedded server."""
    real = os.environ.get("PALETAI_TEST_MONGODB_URI")
    if real:
        yield real
        return
    with EmbeddedMongo(tmp_path_factory.mktemp("mongo")) as server:
        yield server.uri


@pytest.fixture
def db_name() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def mongo_client(mongo_uri: str) -> AsyncIterator[Client]:
    client = make_client(mongo_uri)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def db(mongo_client: Client, db_name: str) -> AsyncIterator[Database]:
    database = mongo_client[db_name]
    yield database
    await mongo_client.drop_database(db_name)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


# --- the app ------------------------------------------------------------------------------


def make_settings(mongo_uri: str, db_name: str, data_dir: Path, **overrides: object) -> Settings:
    """Settings for a test app: its own database and data dir, no .env, offline AI."""
    values: dict[str, object] = {
        "DB_PATH": mongo_uri,
        "DB_NAME": db_name,
        "PALETAI_DATA_DIR": data_dir,
        "ENVIRONMENT": "test",
        "AI_PROVIDER": "offline",
        "JWT_SECRET_KEY": "test-secret-" + "x" * 40,
        "WORKER_POLL_SECONDS": 0.05,
        "LOG_LEVEL": "WARNING",
        "IS_LOCAL_ENV": True,
        "ONESIGNAL_APP_ID": None,
        "ONESIGNAL_REST_API_KEY": None,
        "APPLICATIONINSIGHTS_CONNECTION_STRING": None,
        # No headless browser unless a test asks for one (tests/generation/test_browser.py).
        "COVER_MODE": "card",
        "PLAYABILITY_CHECK": "off",
        # Covers in threads: a process pool per app would cost every test app two interpreter
        # starts (the pool has its own tests in tests/generation/test_cover.py).
        "COVER_PROCESSES": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@asynccontextmanager
async def running_app(
    settings: Settings, peer: tuple[str, int] = ("127.0.0.1", 123)
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its lifespan running, and an httpx client that talks to it in-process
    (from the address `peer`, loopback by default)."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=peer)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield application, http


@pytest.fixture
def settings(mongo_uri: str, db_name: str, data_dir: Path) -> Settings:
    return make_settings(mongo_uri, db_name, data_dir)


@pytest.fixture
def settings_with(mongo_uri: str, db_name: str, data_dir: Path) -> Callable[..., Settings]:
    """Test settings with overrides, validated as real settings are."""

    def build(**overrides: object) -> Settings:
        return make_settings(mongo_uri, db_name, data_dir, **overrides)

    return build


@pytest.fixture
async def app_and_client(
    settings: Settings, mongo_client: Client, db_name: str
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with running_app(settings) as pair:
        yield pair
    await mongo_client.drop_database(db_name)


@pytest.fixture
def client(app_and_client: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return app_and_client[1]


@pytest.fixture
def ctx(app_and_client: tuple[FastAPI, httpx.AsyncClient]) -> AppContext:
    context: AppContext = app_and_client[0].state.ctx
    return context


# --- factories ----------------------------------------------------------------------------


@dataclass
class Player:
    id: str
    email: str
    username: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def create_user(
    client: httpx.AsyncClient, email: str | None = None, password: str = "correct horse 1"
) -> Player:
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    response = await client.post("/auth/register", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body = response.json()
    return Player(
        id=body["user"]["id"],
        email=email,
        username=body["user"]["username"],
        password=password,
        token=body["access_token"],
    )


async def create_game(db: Database, author: Player | None = None, **fields: object) -> str:
    """Insert a published game directly (no generation), returning its id."""
    game_id = new_id()
    doc: dict[str, object] = {
        "_id": game_id,
        "title": f"Game {game_id[-4:]}",
        "description": "a test game",
        "controls": "arrows",
        "prompt": "a test game",
        "author_id": author.id if author else new_id(),
        "author_username": author.username if author else "someone",
        "image_name": None,
        "image_url": None,
        "likes_count": 0,
        "provider": "offline",
        "model": "templates-v1",
        "usage": {},
        "parent_id": None,
        "task_id": None,
        "html_size": 10,
    }
    doc.update(fields)
    html = str(fields.get("html", "<!doctype html><canvas></canvas><script>1</script>"))
    doc.pop("html", None)
    await GamesRepository(db).publish(doc, html)
    return game_id


async def wait_for_task(
    client: httpx.AsyncClient, user: Player, task_id: str, within: float = 30.0
) -> dict[str, object]:
    """Poll GET /tasks/{id} until it ends; returns the last body."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        response = await client.get(f"/tasks/{task_id}", headers=user.headers)
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        if body["status"] in ("succeeded", "failed"):
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"task {task_id} did not finish in {within} s: {body}")
        await asyncio.sleep(0.05)


async def generate_game(client: httpx.AsyncClient, user: Player, prompt: str) -> str:
    """A game made through the API (POST /games, the task run to its end); its id."""
    response = await client.post("/games", json={"prompt": prompt}, headers=user.headers)
    assert response.status_code == 202, response.text
    task = await wait_for_task(client, user, response.json()["task_id"])
    assert task["status"] == "succeeded", task
    return str(task["game_id"])


_FAST_HASH: str | None = None


async def create_users_directly(ctx: AppContext, n: int) -> list[Player]:
    """`n` accounts inserted through the repository (one shared password hash) with tokens:
    for tests that need many users and are not about registration."""
    global _FAST_HASH
    from paletai.core.security import create_access_token, hash_password
    from paletai.users.repository import UsersRepository

    if _FAST_HASH is None:
        _FAST_HASH = hash_password("shared password")
    repo = UsersRepository(ctx.db)
    players = []
    for _ in range(n):
        email = f"bulk-{uuid.uuid4().hex[:10]}@example.com"
        user = await repo.create(email, email.split("@")[0], _FAST_HASH)
        token, _ = create_access_token(user.id, ctx.jwt_secret, 60)
        players.append(Player(user.id, email, user.username, "shared password", token))
    return players

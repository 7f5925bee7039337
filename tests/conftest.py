"""Shared fixtures: one embedded MongoDB (nx-27017) per test session, a fresh database per test.

Set PALETAI_TEST_MONGODB_URI to run the same tests against a real MongoDB instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from paletai.db.client import Client, Database, make_client
from paletai.db.embedded import EmbeddedMongo


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

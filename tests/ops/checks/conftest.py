"""Real PaletAI processes for the migrate checks: one that works, one whose generation fails."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from paletai.db.embedded import free_port
from tests.fixtures.cloud import start_azurite, stop
from tests.process_helpers import ServerProcess, clean_env


def _server(
    tmp_path_factory: pytest.TempPathFactory, mongo_uri: str, name: str, **env: str
) -> Iterator[ServerProcess]:
    cwd = tmp_path_factory.mktemp(name)
    server = ServerProcess(
        cwd,
        clean_env(
            DB_PATH=mongo_uri,
            DB_NAME=f"t_{name}_{uuid.uuid4().hex[:8]}",
            PALETAI_DATA_DIR=str(cwd / "data"),
            JWT_SECRET_KEY="migrate-check-secret-" + "m" * 32,
            WORKER_POLL_SECONDS="0.05",
            **env,
        ),
    )
    try:
        server.wait_ready()
        yield server
    finally:
        server.terminate()


@pytest.fixture(scope="package")
def paletai_server(
    tmp_path_factory: pytest.TempPathFactory, mongo_uri: str
) -> Iterator[ServerProcess]:
    """`paletai serve` with the offline game author and local images."""
    yield from _server(tmp_path_factory, mongo_uri, "ok")


@pytest.fixture(scope="package")
def failing_server(
    tmp_path_factory: pytest.TempPathFactory, mongo_uri: str
) -> Iterator[ServerProcess]:
    """`paletai serve` whose AI provider is a closed port: every generation fails."""
    yield from _server(
        tmp_path_factory,
        mongo_uri,
        "failing",
        AI_PROVIDER="openai",
        OPENAI_API_KEY="x",
        OPENAI_BASE_URL=f"http://127.0.0.1:{free_port()}/v1",
        AI_MAX_RETRIES="0",
        TASK_MAX_ATTEMPTS="1",
    )


@pytest.fixture(scope="package")
def slow_server(
    tmp_path_factory: pytest.TempPathFactory, mongo_uri: str
) -> Iterator[ServerProcess]:
    """`paletai serve` whose generation takes 2 s and that allows 2 games per user per day."""
    yield from _server(
        tmp_path_factory,
        mongo_uri,
        "slow",
        GENERATION_TEST_DELAY_SECONDS="2",
        DAILY_PROMPT_LIMIT="2",
    )


@pytest.fixture(scope="package")
def blob_server(
    tmp_path_factory: pytest.TempPathFactory, mongo_uri: str
) -> Iterator[ServerProcess]:
    """`paletai serve` keeping its cover images in Azurite (the Azure Storage emulator)."""
    azurite, proc = start_azurite(tmp_path_factory.mktemp("azurite"))
    try:
        yield from _server(
            tmp_path_factory,
            mongo_uri,
            "blob",
            AZURE_STORAGE_CONNECTION_STRING=azurite.connection_string(),
            AZURE_STORAGE_CONTAINER=f"img-{uuid.uuid4().hex[:12]}",
        )
    finally:
        stop(proc)


@pytest.fixture
def closed_url() -> str:
    """A loopback URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"

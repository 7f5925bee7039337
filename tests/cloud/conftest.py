"""Fixtures for the cloud adapters: Azurite (the Azure Storage emulator) and small real servers."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

REPO = Path(__file__).resolve().parents[2]
AZURITE_BIN = REPO / "tools" / "node_modules" / ".bin" / "azurite-blob"

# Azurite's well-known development account (public, documented; not a secret).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# A second account in the same emulator: stands for the new subscription's storage account.
NEW_ACCOUNT = "paletainew"
NEW_KEY = base64.b64encode(b"paletai-new-account-test-key-32b").decode()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"server exited with {proc.returncode}: {output[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@dataclass(frozen=True)
class Azurite:
    """One running Azurite blob service with two accounts."""

    port: int

    def connection_string(self, account: str = DEV_ACCOUNT) -> str:
        key = {DEV_ACCOUNT: DEV_KEY, NEW_ACCOUNT: NEW_KEY}[account]
        return (
            f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};"
            f"BlobEndpoint=http://127.0.0.1:{self.port}/{account};"
        )


def start_azurite(workdir: Path) -> tuple[Azurite, subprocess.Popen[bytes]]:
    if not AZURITE_BIN.exists():
        pytest.fail(
            f"Azurite is not installed ({AZURITE_BIN} is missing): run scripts/install-tools.sh",
            pytrace=False,
        )
    port = free_port()
    env = dict(os.environ, AZURITE_ACCOUNTS=f"{DEV_ACCOUNT}:{DEV_KEY};{NEW_ACCOUNT}:{NEW_KEY}")
    proc = subprocess.Popen(
        [
            str(AZURITE_BIN),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
            "--silent",
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
        ],
        cwd=workdir,  # (--location cannot be combined with --inMemoryPersistence)
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    problem = None
    try:
        wait_for_port(port, proc)
    except RuntimeError as exc:
        problem = str(exc)
    if problem is not None:
        proc.kill()
        pytest.fail(f"Azurite did not start: {problem}", pytrace=False)
    return Azurite(port), proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def azurite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    server, proc = start_azurite(tmp_path_factory.mktemp("azurite"))
    yield server
    stop(proc)


@pytest.fixture(scope="session")
def azurite(azurite_server: Azurite) -> str:
    """Connection string of the emulator's development account."""
    return azurite_server.connection_string()


@pytest.fixture(scope="session")
def azurite_new_account(azurite_server: Azurite) -> str:
    """Connection string of a second account in the same emulator (the 'new subscription')."""
    return azurite_server.connection_string(NEW_ACCOUNT)


@pytest.fixture(scope="session")
def azurite_other_instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second, separate emulator: it cannot read blobs of the first one server-side."""
    server, proc = start_azurite(tmp_path_factory.mktemp("azurite2"))
    yield server.connection_string()
    stop(proc)


@pytest.fixture
def container_name() -> str:
    return f"img-{uuid.uuid4().hex[:12]}"


@dataclass
class FakeOneSignal:
    """Answers POST /notifications (and /api/v1/notifications) from a script of responses."""

    base_url: str = ""
    script: list[tuple[int, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append((request.path, dict(request.headers), body))
        status, answer, headers = (
            self.script.pop(0) if self.script else (200, {"id": "n-1", "external_id": None}, {})
        )
        return web.json_response(answer, status=status, headers=headers)


@pytest.fixture
async def onesignal() -> AsyncIterator[FakeOneSignal]:
    fake = FakeOneSignal()
    app = web.Application()
    app.router.add_post("/notifications", fake.handle)
    app.router.add_post("/api/v1/notifications", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    fake.base_url = f"http://127.0.0.1:{port}"
    yield fake
    await runner.cleanup()

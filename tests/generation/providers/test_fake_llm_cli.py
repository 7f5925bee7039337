"""The fake LLM as a standalone process, as the pipeline tests and benchmarks run it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.generation.providers.fake_llm import VALID_GAME_HTML

SCRIPT = Path(__file__).with_name("fake_llm.py")


@pytest.fixture(scope="module")
def fake_process() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--port", str(port), "--delay", "0.3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("fake_llm.py did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_standalone_serves_a_game_after_the_delay(fake_process: str) -> None:
    async with httpx.AsyncClient(base_url=fake_process, timeout=10) as client:
        started = time.monotonic()
        response = await client.post("/v1/chat/completions", json={"model": "m", "messages": []})
        took = time.monotonic() - started
    assert response.status_code == 200
    content = json.loads(response.json()["choices"][0]["message"]["content"])
    assert content["html"] == VALID_GAME_HTML
    assert took >= 0.3


async def test_standalone_speaks_anthropic_too(fake_process: str) -> None:
    async with httpx.AsyncClient(base_url=fake_process, timeout=10) as client:
        response = await client.post(
            "/v1/messages", json={"model": "m", "messages": [], "tools": [{"name": "submit_game"}]}
        )
    assert response.json()["content"][0]["input"]["html"] == VALID_GAME_HTML

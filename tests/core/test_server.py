"""The HTTP server's own limits, under `paletai serve` and under gunicorn with
GuardedUvicornWorker (the production startup): a request head over MAX_HEADER_BYTES is refused,
a head that never completes and an idle keep-alive connection are closed by the server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from paletai.db.embedded import free_port
from tests.process_helpers import ServerProcess, clean_env

pytestmark = pytest.mark.slow

# Generous: the server must close well before this; a test never waits on a timing.
GIVE_UP_SECONDS = 30.0


@pytest.fixture(scope="module", params=["serve", "gunicorn"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, mongo_uri: str
) -> Iterator[tuple[str, int]]:
    workdir = Path(tmp_path_factory.mktemp(request.param))
    env = clean_env(
        DB_PATH=mongo_uri,
        DB_NAME=f"server_{request.param}",
        PALETAI_DATA_DIR=str(workdir / "data"),
        JWT_SECRET_KEY="server-secret-" + "s" * 40,
        MAX_HEADER_BYTES="8192",
        HTTP_HEADER_TIMEOUT_SECONDS="1",
        HTTP_KEEP_ALIVE_SECONDS="1",
    )
    if request.param == "serve":
        serve = ServerProcess(workdir, env)
        try:
            serve.wait_ready()
            yield "127.0.0.1", serve.port
        finally:
            serve.terminate()
        return
    port = free_port()
    log = (workdir / "gunicorn.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "paletai.main:app",
            "-k",
            "paletai.core.server.GuardedUvicornWorker",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
        ],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (workdir / "gunicorn.log").read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (workdir / "gunicorn.log").read_text()[-3000:]
            time.sleep(0.2)
        yield "127.0.0.1", port
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def connect(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address, timeout=GIVE_UP_SECONDS)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_normal_request_is_served(server: tuple[str, int]) -> None:
    host, port = server
    response = httpx.get(f"http://{host}:{port}/health", headers={"X-Small": "a" * 1000})
    assert response.status_code == 200


def test_oversized_header_is_refused(server: tuple[str, int]) -> None:
    head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 64 * 1024 + b"\r\n\r\n"
    with connect(server) as sock:
        sock.sendall(head)
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert b'"code": "headers_too_large"' in answer


def test_oversized_header_sent_slowly_is_refused(server: tuple[str, int]) -> None:
    answer, reset = b"", False
    with connect(server) as sock:
        try:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            for _ in range(64):  # 64 KB of headers, 1 KB at a time
                sock.sendall(b"X-Part: " + b"a" * 1014 + b"\r\n")
            sock.sendall(b"\r\n")
            answer = read_until_closed(sock)
        except (BrokenPipeError, ConnectionResetError):
            # The server answered and closed while we were still sending: the kernel then
            # resets the connection and may drop the answer; the head was refused either way.
            reset = True
    assert reset or answer.startswith((b"HTTP/1.1 431", b"HTTP/1.1 400")), answer[:200]


def test_a_request_head_that_never_completes_is_closed(server: tuple[str, int]) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        closed = False
        deadline = time.monotonic() + GIVE_UP_SECONDS
        # A slow client keeps sending header lines; the head deadline holds regardless.
        sock.settimeout(0.25)
        while time.monotonic() < deadline and not closed:
            try:
                sock.sendall(b"X-Slow: 1\r\n")
                closed = sock.recv(1024) == b""
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
    assert closed, "the server kept a never-ending request head open"


def test_an_idle_keep_alive_connection_is_closed(server: tuple[str, int]) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 200")

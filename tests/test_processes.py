"""PaletAI as real processes: crashes and restarts lose no task and make no duplicate game."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from pymongo import MongoClient

from paletai.db.embedded import free_port
from tests.process_helpers import ServerProcess, clean_env

pytestmark = pytest.mark.slow


def _register(base: str) -> dict[str, str]:
    r = httpx.post(
        f"{base}/auth/register", json={"email": "crash@example.com", "password": "password 1"}
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _poll(base: str, headers: dict[str, str], task_id: str, until: set[str], within: float) -> dict:
    deadline = time.monotonic() + within
    body: dict = {}
    while time.monotonic() < deadline:
        body = httpx.get(f"{base}/tasks/{task_id}", headers=headers, timeout=5).json()
        if body["status"] in until or body["stage"] in until:
            return body
        time.sleep(0.1)
    raise AssertionError(f"task never reached {until}: {body}")


def test_kill_9_mid_generation_then_restart_finishes_with_one_game(
    tmp_path: Path, mongo_uri: str, db_name: str
) -> None:
    env = clean_env(
        DB_PATH=mongo_uri,
        DB_NAME=db_name,
        PALETAI_DATA_DIR=str(tmp_path / "data"),
        JWT_SECRET_KEY="crash-test-secret-" + "k" * 32,
        GENERATION_TEST_DELAY_SECONDS="3",
        TASK_LEASE_SECONDS="2",
        WORKER_POLL_SECONDS="0.1",
    )
    first = ServerProcess(tmp_path, env)
    first.wait_ready()
    headers = _register(first.base_url)
    r = httpx.post(f"{first.base_url}/games", json={"prompt": "a snake game"}, headers=headers)
    task_id = r.json()["task_id"]
    running = _poll(first.base_url, headers, task_id, {"generating"}, 15)
    assert running["status"] == "running"
    first.kill()

    second = ServerProcess(tmp_path, env | {"GENERATION_TEST_DELAY_SECONDS": "0"}, "serve2.log")
    try:
        second.wait_ready()
        done = _poll(second.base_url, headers, task_id, {"succeeded", "failed"}, 30)
        assert done["status"] == "succeeded", done
        assert done["attempts"] == 2
        with MongoClient(mongo_uri) as client:
            games = list(client[db_name]["games"].find({"task_id": task_id}))
        assert len(games) == 1
        assert games[0]["_id"] == done["game_id"]
        play = httpx.get(f"{second.base_url}/games/{done['game_id']}/play")
        assert play.status_code == 200
    finally:
        second.terminate()


def test_serve_without_db_path_runs_embedded_database_and_stops_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = clean_env(PALETAI_DATA_DIR=str(data))
    server = ServerProcess(tmp_path, env)
    server.wait_ready()
    body = httpx.get(f"{server.base_url}/health").json()
    assert body["database"] == "healthy"
    pid_files = list((data / "db" / "run").glob("*.pid"))
    assert pid_files, "the embedded server should record its pid"
    db_pid = int(pid_files[0].read_text().strip())
    assert _alive(db_pid)
    assert server.terminate() == 0
    assert _gone(db_pid), "SIGTERM to serve must stop the embedded database"

    # A kill -9 of serve must not leave the database process behind either.
    again = ServerProcess(tmp_path, env, "serve2.log")
    again.wait_ready()
    # The data dir (JWT secret, database) survived the restart: the same account still logs in.
    pid_files = sorted((data / "db" / "run").glob("*.pid"), key=lambda p: p.stat().st_mtime)
    db_pid = int(pid_files[-1].read_text().strip())
    again.kill()
    assert _gone(db_pid), "kill -9 of serve must not leave the embedded database running"


def test_gunicorn_without_db_path_is_a_clear_startup_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = clean_env(PALETAI_DATA_DIR=str(tmp_path / "data"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "paletai.main:app",
            "-k",
            "uvicorn_worker.UvicornWorker",
            "--bind",
            "127.0.0.1:0",
            "--workers",
            "1",
            "--timeout",
            "20",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "DB_PATH is not set" in proc.stdout + proc.stderr


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


def _serve_env(data: Path, **extra: str) -> dict[str, str]:
    return clean_env(PALETAI_DATA_DIR=str(data), JWT_SECRET_KEY="outage-test-" + "o" * 40, **extra)


def _db_pid(data: Path, port: int) -> int:
    return int((data / "db" / "run" / f"nx-27017-{port}.pid").read_text().strip())


def test_embedded_database_killed_under_serve_is_503_then_restarted_by_the_watchdog(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    db_port = free_port()
    # A pause before the restart long enough for a request to see the outage.
    env = _serve_env(data, PALETAI_DB_PORT=str(db_port), PALETAI_DB_RESTART_DELAY_SECONDS="5")
    server = ServerProcess(tmp_path, env)
    try:
        server.wait_ready()
        headers = _register(server.base_url)
        first_pid = _db_pid(data, db_port)
        os.kill(first_pid, signal.SIGKILL)
        assert _gone(first_pid)

        down = httpx.get(f"{server.base_url}/games/feed", timeout=10)
        assert down.status_code == 503, down.text
        assert down.json()["error"]["code"] == "database_unavailable"
        assert int(down.headers["retry-after"]) > 0

        server.wait_ready()  # /health answers 200 again: the watchdog restarted the database
        me = httpx.get(f"{server.base_url}/auth/me", headers=headers, timeout=10)
        assert me.status_code == 200, me.text
        assert me.json()["email"] == "crash@example.com"
        assert _db_pid(data, db_port) != first_pid
        # The watchdog logs once its restart returns, which the app may notice first.
        deadline = time.monotonic() + 30
        while "restarted it on" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        log = server.log_path.read_text(errors="replace")
        assert log.count("restarted it on") == 1, log
        assert log.count(" unreachable (") == 1, log
        assert "Traceback" not in log
    finally:
        assert server.terminate() == 0


def test_serve_writes_the_uri_with_the_database_name_on_the_pinned_port_owner_only(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    (data / "db").mkdir(parents=True, mode=0o755)
    db_port = free_port()
    server = ServerProcess(tmp_path, _serve_env(data, PALETAI_DB_PORT=str(db_port)))
    try:
        server.wait_ready()
        uri = (data / "mongodb-uri").read_text().strip()
        assert uri == f"mongodb://127.0.0.1:{db_port}/paletai?directConnection=true"
        assert uri in server.log()
        _register(server.base_url)
        with MongoClient(uri) as tool:  # as `mongosh "$(cat .paletai/mongodb-uri)"` would
            assert tool.get_default_database().users.count_documents({}) == 1
        db_dir = data / "db"
        for path in [db_dir, *db_dir.rglob("*")]:
            expected = 0o700 if path.is_dir() else 0o600
            assert path.stat().st_mode & 0o777 == expected, path
    finally:
        assert server.terminate() == 0


def _run_paletai(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "paletai", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_on_a_busy_port_says_so_in_one_line_and_starts_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _run_paletai(tmp_path, _serve_env(data), "serve", "--port", str(port))
    assert proc.returncode != 0
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert f"port {port}" in lines[0]
    assert "--port" in lines[0]
    assert "PORT=" in lines[0]
    assert not (data / "db").exists(), "no database may be started for a server that cannot bind"


def test_serve_with_a_malformed_db_path_is_one_line_and_exit_1(tmp_path: Path) -> None:
    env = _serve_env(tmp_path / "data", DB_PATH="mongodb://db.example:notaport/paletai")
    proc = _run_paletai(tmp_path, env, "serve", "--port", str(free_port()))
    assert proc.returncode == 1
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert "DB_PATH" in lines[0]
    assert "Port" in lines[0]

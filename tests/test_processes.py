"""PaletAI as real processes: crashes and restarts lose no task and make no duplicate game."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from pymongo import MongoClient

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

"""`paletai worker` processes against the real SDK path (OpenAI provider, fake LLM server):
scale-out shares the queue, and a worker killed mid-stream loses nothing and duplicates nothing."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import MongoClient

from paletai.core.processes import start_process
from paletai.db.indexes import INDEXES
from paletai.jobs.repository import new_task_document
from tests.generation.providers.fake_llm import FakeLLM, Plan, ok_game
from tests.process_helpers import clean_env

pytestmark = pytest.mark.slow


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    with FakeLLM() as fake:
        yield fake


def worker_env(mongo_uri: str, db_name: str, data_dir: Path, fake: FakeLLM, **extra: str) -> dict:
    return clean_env(
        DB_PATH=mongo_uri,
        DB_NAME=db_name,
        PALETAI_DATA_DIR=str(data_dir),
        JWT_SECRET_KEY="worker-test-secret-" + "w" * 32,
        AI_PROVIDER="openai",
        OPENAI_API_KEY="sk-test-not-a-real-key",
        OPENAI_BASE_URL=fake.openai_base_url,
        OPENAI_MODEL="fake-model",
        WORKER_POLL_SECONDS="0.1",
        AI_RETRY_BASE_SECONDS="0.05",
        **extra,
    )


def start_worker(env: dict, log: Path, concurrency: int) -> subprocess.Popen[bytes]:
    return start_process(
        [sys.executable, "-m", "paletai", "worker", "--concurrency", str(concurrency)],
        log_path=log,
        env=env,
    )


def queue_tasks(mongo_uri: str, db_name: str, n: int) -> list[str]:
    """Tasks as POST /games creates them (user, fixed game id), straight into the queue."""
    with MongoClient(mongo_uri) as client:
        db = client[db_name]
        for collection, models in INDEXES.items():
            db[collection].create_indexes(models)
        db.users.insert_one(
            {
                "_id": "u1",
                "email": "w@example.com",
                "username": "worker-test",
                "password_hash": "x",
                "created_at": dt.datetime.now(dt.UTC),
            }
        )
        docs = [
            new_task_document(user_id="u1", prompt=f"game {i}", max_attempts=3) for i in range(n)
        ]
        db.tasks.insert_many(docs)
        ids = [str(d["_id"]) for d in docs]
        return ids


def wait_all_done(mongo_uri: str, db_name: str, ids: list[str], within: float) -> list[dict]:
    deadline = time.monotonic() + within
    with MongoClient(mongo_uri) as client:
        tasks = client[db_name].tasks
        while time.monotonic() < deadline:
            docs = list(tasks.find({"_id": {"$in": ids}}))
            if all(d["status"] in ("succeeded", "failed") for d in docs):
                return docs
            time.sleep(0.2)
        raise AssertionError(f"not done in {within} s: {[(d['_id'], d['status']) for d in docs]}")


def test_two_worker_processes_share_twenty_tasks_each_done_once(
    tmp_path: Path, mongo_uri: str, db_name: str, fake_llm: FakeLLM
) -> None:
    fake_llm.default = Plan("game", delay=0.3)
    ids = queue_tasks(mongo_uri, db_name, 20)
    env = worker_env(mongo_uri, db_name, tmp_path / "data", fake_llm)
    workers = [start_worker(env, tmp_path / f"w{i}.log", 4) for i in range(2)]
    try:
        docs = wait_all_done(mongo_uri, db_name, ids, 90)
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        codes = [w.wait(30) for w in workers]
    assert codes == [0, 0]
    assert all(d["status"] == "succeeded" for d in docs), [d.get("error") for d in docs]
    assert all(d["attempts"] == 1 for d in docs)
    # Both processes took part (their identities carry the pid).
    pids = {d["finished_by"].split(":")[1] for d in docs}
    assert pids == {str(w.pid) for w in workers}
    with MongoClient(mongo_uri) as client:
        games = list(client[db_name].games.find({}, {"task_id": 1, "provider": 1, "model": 1}))
    assert sorted(g["task_id"] for g in games) == sorted(ids)
    assert {g["provider"] for g in games} == {"openai"}
    assert {g["model"] for g in games} == {"fake-model"}
    assert len([r for r in fake_llm.requests if r.path.endswith("/chat/completions")]) == 20


def test_worker_killed_mid_stream_task_is_retried_once_and_one_game_exists(
    tmp_path: Path, mongo_uri: str, db_name: str, fake_llm: FakeLLM
) -> None:
    # A slow stream: about 4 s of chunks, so the kill lands mid-stream.
    fake_llm.default = ok_game(chunk_delay=0.05, chunk_size=40)
    (task_id,) = queue_tasks(mongo_uri, db_name, 1)
    env = worker_env(
        mongo_uri,
        db_name,
        tmp_path / "data",
        fake_llm,
        ENABLE_STREAMING="true",
        TASK_LEASE_SECONDS="2",
    )
    first = start_worker(env, tmp_path / "w1.log", 1)
    with MongoClient(mongo_uri) as client:
        tasks = client[db_name].tasks
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            doc = tasks.find_one({"_id": task_id})
            assert doc is not None
            if doc["progress"].get("chars", 0) > 0:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"no streaming progress seen: {doc}")
        assert doc["status"] == "running"
        assert doc["stage"] == "generating"
        first.send_signal(signal.SIGKILL)
        first.wait(10)

        fake_llm.default = ok_game()
        second = start_worker(env, tmp_path / "w2.log", 1)
        try:
            (done,) = wait_all_done(mongo_uri, db_name, [task_id], 60)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
        assert done["status"] == "succeeded", done
        assert done["attempts"] == 2
        assert done["finished_by"].split(":")[1] == str(second.pid)
        assert client[db_name].games.count_documents({"task_id": task_id}) == 1
        assert client[db_name].game_html.count_documents({"_id": done["game_id"]}) == 1


def test_sigterm_hands_a_running_task_back_without_counting_the_attempt(
    tmp_path: Path, mongo_uri: str, db_name: str, fake_llm: FakeLLM
) -> None:
    fake_llm.default = Plan("game", delay=30)
    (task_id,) = queue_tasks(mongo_uri, db_name, 1)
    env = worker_env(
        mongo_uri, db_name, tmp_path / "data", fake_llm, WORKER_SHUTDOWN_GRACE_SECONDS="1"
    )
    worker = start_worker(env, tmp_path / "w.log", 1)
    with MongoClient(mongo_uri) as client:
        tasks = client[db_name].tasks
        deadline = time.monotonic() + 30
        while tasks.find_one({"_id": task_id, "status": "running"}) is None:
            assert time.monotonic() < deadline, "the worker never claimed the task"
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
        doc = tasks.find_one({"_id": task_id})
    assert doc is not None
    assert doc["status"] == "queued"
    assert doc["attempts"] == 0
    assert doc["lease_owner"] is None

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pymongo import MongoClient

from paletai.db.client import Database
from paletai.db.embedded import EmbeddedMongo, EmbeddedMongoError


async def test_fixture_database_round_trip(db: Database) -> None:
    result = await db.things.insert_one({"name": "x"})
    found = await db.things.find_one({"_id": result.inserted_id})
    assert found is not None
    assert found["name"] == "x"


def test_embedded_server_keeps_data_across_restart(tmp_path: Path) -> None:
    with EmbeddedMongo(tmp_path) as server, MongoClient(server.uri) as client:
        client.keep.items.insert_one({"_id": "a", "v": 1})
    with EmbeddedMongo(tmp_path) as server, MongoClient(server.uri) as client:
        assert client.keep.items.find_one({"_id": "a"}) == {"_id": "a", "v": 1}


def test_embedded_server_stops_its_process(tmp_path: Path) -> None:
    server = EmbeddedMongo(tmp_path)
    server.start()
    proc = server.process
    assert proc is not None
    server.stop()
    assert proc.poll() is not None


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with EmbeddedMongo(tmp_path / "a") as first:
        second = EmbeddedMongo(tmp_path / "b", port=first.port, startup_timeout=5)
        with pytest.raises(EmbeddedMongoError):
            second.start()


def _modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mode & 0o777 for p in [root, *root.rglob("*")]}


def test_files_are_readable_by_the_owner_only_including_older_ones(tmp_path: Path) -> None:
    data = tmp_path / "db"
    data.mkdir(mode=0o755)
    old = data / "left-from-before.db"
    old.write_text("x")
    old.chmod(0o644)
    with EmbeddedMongo(data) as server, MongoClient(server.uri) as client:
        client.private.items.insert_one({"_id": "a"})
        modes = _modes(data)
    assert any(name.endswith(".db") and name != old.name for name in modes), modes
    for name, mode in modes.items():
        expected = 0o700 if (data / name).is_dir() else 0o600
        assert mode == expected, f"{name}: {oct(mode)}"


def test_database_uri_names_the_database_tools_land_in(tmp_path: Path) -> None:
    with EmbeddedMongo(tmp_path) as server:
        uri = server.database_uri("paletai")
        assert uri == f"mongodb://127.0.0.1:{server.port}/paletai?directConnection=true"
        with MongoClient(server.uri) as client:
            client.paletai.users.insert_one({"_id": "u"})
        # What `mongosh URI --eval "db.users.countDocuments({})"` counts in.
        with MongoClient(uri) as tool:
            assert tool.get_default_database().name == "paletai"
            assert tool.get_default_database().users.count_documents({}) == 1


def _wait(condition: Callable[[], bool], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _crash(server: EmbeddedMongo) -> int:
    """kill -9 the server behind the watchdog's back; returns the old pid."""
    proc = server.process
    assert proc is not None
    os.kill(proc.pid, signal.SIGKILL)
    return proc.pid


def test_watchdog_restarts_a_dead_server_on_its_port_with_its_data_then_gives_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="paletai.db.embedded")
    server = EmbeddedMongo(tmp_path)
    server.start()
    uri = server.uri
    try:
        with MongoClient(uri) as client:
            client.keep.items.insert_one({"_id": "a"})
        server.watch(max_restarts=1, restart_delay=0, check_every=0.05)
        first = _crash(server)
        _wait(lambda: server.restarts == 1)
        assert server.process is not None
        assert server.process.pid != first
        assert server.uri == uri
        with MongoClient(uri, serverSelectionTimeoutMS=5000) as client:
            assert client.keep.items.find_one({"_id": "a"}) == {"_id": "a"}
        restarted = [r for r in caplog.records if "restarted it on" in r.getMessage()]
        assert len(restarted) == 1

        _crash(server)
        _wait(lambda: any("giving up" in r.getMessage() for r in caplog.records))
        assert server.restarts == 1
        gave_up = [r for r in caplog.records if "giving up" in r.getMessage()]
        assert len(gave_up) == 1
        assert server.process is not None
        assert server.process.poll() is not None
    finally:
        server.stop()

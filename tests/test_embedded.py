from __future__ import annotations

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

"""verify finds each kind of difference, and says identical only when it is."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path

import bson
import pytest
from bson import Int64, ObjectId
from bson.raw_bson import RawBSONDocument
from pymongo.errors import ServerSelectionTimeoutError
from typer.testing import CliRunner

from paletai.db.client import Client
from paletai.ops.db.cli import db_app
from paletai.ops.db.common import RAW_CODEC
from paletai.ops.db.verify import _raw_batches, leading_id, merge_compare, verify
from tests.ops.conftest import game_doc, with_db

runner = CliRunner()


@pytest.fixture
async def twin_dbs(mongo_client: Client, fresh_name: str) -> AsyncIterator[tuple[str, str]]:
    """Two identical databases on the session server: (source, target)."""
    src, dst = fresh_name + "_a", fresh_name + "_b"
    docs = [game_doc(i, size=100) for i in range(120)]
    for name in (src, dst):
        await mongo_client[name].games.insert_many([dict(d) for d in docs])
        await mongo_client[name].games.create_index("created_at")
        await mongo_client[name].users.insert_many(
            [{"_id": f"user-{i}", "email": f"u{i}@x.org"} for i in range(10)]
        )
        await mongo_client[name].users.create_index("email", unique=True)
    yield src, dst
    await mongo_client.drop_database(src)
    await mongo_client.drop_database(dst)


async def test_identical_databases_verify(mongo_uri: str, twin_dbs: tuple[str, str]) -> None:
    src, dst = twin_dbs
    report = await verify(mongo_uri, mongo_uri, db_name=src, target_db_name=dst)
    assert report.identical
    games = next(c for c in report.collections if c.name == "games")
    assert games.source_count == games.target_count == 120


async def test_verify_catches_a_missing_document(
    mongo_uri: str, mongo_client: Client, twin_dbs: tuple[str, str]
) -> None:
    src, dst = twin_dbs
    victim = await mongo_client[dst].games.find_one({"title": "Game 7"})
    assert victim is not None
    await mongo_client[dst].games.delete_one({"_id": victim["_id"]})
    report = await verify(mongo_uri, mongo_uri, db_name=src, target_db_name=dst)
    assert not report.identical
    games = next(c for c in report.collections if c.name == "games")
    assert games.missing_in_target.count == 1
    assert str(victim["_id"]) in games.missing_in_target.sample[0]
    assert games.extra_in_target.count == 0
    assert games.different.count == 0


async def test_verify_catches_an_extra_document(
    mongo_uri: str, mongo_client: Client, twin_dbs: tuple[str, str]
) -> None:
    src, dst = twin_dbs
    await mongo_client[dst].users.insert_one({"_id": "user-intruder", "email": "i@x.org"})
    report = await verify(mongo_uri, mongo_uri, db_name=src, target_db_name=dst)
    users = next(c for c in report.collections if c.name == "users")
    assert not report.identical
    assert users.extra_in_target.count == 1
    assert users.extra_in_target.sample == ['"user-intruder"']
    assert users.missing_in_target.count == 0


async def test_verify_catches_a_changed_field(
    mongo_uri: str, mongo_client: Client, twin_dbs: tuple[str, str]
) -> None:
    src, dst = twin_dbs
    await mongo_client[dst].users.update_one({"_id": "user-3"}, {"$set": {"email": "U3@x.org"}})
    report = await verify(mongo_uri, mongo_uri, db_name=src, target_db_name=dst)
    users = next(c for c in report.collections if c.name == "users")
    assert not report.identical
    assert users.different.count == 1
    assert users.different.sample == ['"user-3"']
    assert users.source_count == users.target_count


async def test_verify_catches_a_changed_index(
    mongo_uri: str, mongo_client: Client, twin_dbs: tuple[str, str]
) -> None:
    src, dst = twin_dbs
    await mongo_client[dst].games.create_index("likes_count")
    report = await verify(mongo_uri, mongo_uri, db_name=src, target_db_name=dst)
    games = next(c for c in report.collections if c.name == "games")
    assert not report.identical
    assert games.indexes_extra_in_target == ["{likes_count: 1}"]
    assert games.missing_in_target.count == games.different.count == 0


async def test_verify_catches_an_index_that_lost_unique(
    mongo_uri: str, mongo_client: Client, twin_dbs: tuple[str, str]
) -> None:
    src, dst = twin_dbs
    await mongo_client[dst].drop_collection("users")
    await mongo_client[dst].users.insert_many(
        [{"_id": f"user-{i}", "email": f"u{i}@x.org"} for i in range(10)]
    )
    await mongo_client[dst].users.create_index("email")  # same key, not unique
    report = await verify(mongo_uri, mongo_uri, db_name=src, target_db_name=dst)
    users = next(c for c in report.collections if c.name == "users")
    assert users.indexes_missing_in_target == ["{email: 1} unique"]
    assert users.indexes_extra_in_target == ["{email: 1}"]
    assert users.different.count == 0


async def test_verify_handles_ids_the_server_sorts_differently(
    mongo_uri: str, mongo_client: Client, fresh_name: str
) -> None:
    # Integer _ids: a server whose _id order is not MongoDB's still gets an exact answer.
    src, dst = fresh_name + "_s", fresh_name + "_t"
    for name in (src, dst):
        await mongo_client[name].nums.insert_many([{"_id": i, "v": i} for i in range(1, 40)])
    await mongo_client[dst].nums.update_one({"_id": 11}, {"$set": {"v": -1}})
    await mongo_client[dst].nums.delete_one({"_id": 2})
    report = await verify(mongo_uri, mongo_uri, db_name=src, target_db_name=dst)
    nums = report.collections[0]
    assert nums.different.sample == ["11"]
    assert nums.missing_in_target.sample == ["2"]
    assert nums.extra_in_target.count == 0
    await mongo_client.drop_database(src)
    await mongo_client.drop_database(dst)


def test_verify_cli_exit_code_and_json(
    mongo_uri: str, twin_dbs: tuple[str, str], tmp_path: Path
) -> None:
    src, dst = twin_dbs
    out = tmp_path / "v.json"
    ok = runner.invoke(
        db_app,
        [
            "verify",
            "--source",
            with_db(mongo_uri, src),
            "--target",
            with_db(mongo_uri, dst),
            "--json",
            str(out),
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert "IDENTICAL" in ok.output
    assert json.loads(out.read_text())["identical"] is True


@pytest.mark.parametrize(
    "value",
    [
        ObjectId(),
        "plain",
        "ünï",
        "",
        7,
        Int64(2**40),
        2.5,
        True,
        None,
        dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        {"a": 1, "b": [2]},
    ],
)
def test_leading_id_reads_the_id_without_inflating(value: object) -> None:
    doc = RawBSONDocument(bson.encode({"_id": value, "x": "y" * 50}), RAW_CODEC)
    later = RawBSONDocument(bson.encode({"x": 1, "_id": value}), RAW_CODEC)
    for raw in (doc, later):
        assert bson.encode({"_id": leading_id(raw)}) == bson.encode({"_id": value})
        assert type(leading_id(raw)) is type(raw["_id"])


async def test_verify_across_many_batches_finds_exactly_the_differences(
    mongo_uri: str, mongo_client: Client, fresh_name: str
) -> None:
    # Identical leading batches are compared whole; after the first difference the batch
    # boundaries shift and the merge goes document by document: both must be right.
    src, dst = fresh_name + "_s", fresh_name + "_t"
    docs = [{"_id": f"doc-{i:05d}", "v": i} for i in range(2600)]
    for name in (src, dst):
        await mongo_client[name].items.insert_many([dict(d) for d in docs])
    await mongo_client[dst].items.delete_one({"_id": "doc-01500"})
    await mongo_client[dst].items.update_one({"_id": "doc-02200"}, {"$set": {"v": -1}})
    await mongo_client[dst].items.insert_one({"_id": "doc-02500x", "v": 0})
    report = await verify(mongo_uri, mongo_uri, db_name=src, target_db_name=dst)
    items = report.collections[0]
    assert items.merge == "sorted"
    assert items.missing_in_target.sample == ['"doc-01500"']
    assert items.different.sample == ['"doc-02200"']
    assert items.extra_in_target.sample == ['"doc-02500x"']
    assert (items.source_count, items.target_count) == (2600, 2600)
    await mongo_client.drop_database(src)
    await mongo_client.drop_database(dst)


async def test_a_comparison_stopped_midway_ends(mongo_client: Client, fresh_name: str) -> None:
    """A sync cancels a background reconcile when a drain needs the collection: the scan of a
    side must end even when its read-ahead queue is full (it used to wait there forever)."""
    await mongo_client[fresh_name].games.insert_many([{"n": i} for i in range(8000)])
    source = mongo_client[fresh_name].get_collection("games", codec_options=RAW_CODEC)
    batches = _raw_batches(source, ids_only=False)
    assert await anext(batches)
    await asyncio.sleep(0.5)  # room for the read-ahead to fill its queue meanwhile
    closing = asyncio.create_task(batches.aclose())
    done, _ = await asyncio.wait({closing}, timeout=30)
    assert done == {closing}, "the stopped scan did not end"


class _Batches:
    """A raw-batch cursor stand-in: one slow batch, or a server that times out."""

    def __init__(self, fail: bool) -> None:
        self.fail = fail

    def sort(self, *args: object) -> _Batches:
        return self

    def __aiter__(self) -> _Batches:
        return self

    async def __anext__(self) -> bytes:
        if self.fail:
            raise ServerSelectionTimeoutError("127.0.0.1:1: timed out")
        await asyncio.sleep(0.2)
        raise StopAsyncIteration


class _Side:
    def __init__(self, fail: bool) -> None:
        self.fail = fail

    def find_raw_batches(self, *args: object, **kwargs: object) -> _Batches:
        return _Batches(self.fail)


async def test_a_side_that_fails_while_the_other_loads_raises_its_own_error() -> None:
    """A server timing out on one side while the other side's first batch is still on its way:
    the timeout is what the caller sees (a sync retries it), not an error about closing."""
    sink = type("Sink", (), {"seen": lambda *a: None})()
    with pytest.raises(ServerSelectionTimeoutError):
        await merge_compare(_Side(False), _Side(True), sink)  # type: ignore[arg-type]

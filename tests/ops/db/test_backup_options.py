"""backup/restore options: --parallel, --ns-exclude, --collection + --query, --dry-run,
--include-users (issue 11)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import bson
import pytest
from bson import ObjectId
from typer.testing import CliRunner, Result

from paletai.db.client import Client, make_client
from paletai.ops.db.backup import backup
from paletai.ops.db.cli import db_app
from paletai.ops.db.common import RAW_CODEC, index_shape
from paletai.ops.db.dumpfmt import USERS_FILE
from paletai.ops.db.namespaces import NamespaceMapper
from paletai.ops.db.parallel import CollectionFailed
from paletai.ops.db.progress import collection_progress
from paletai.ops.db.restore import restore
from paletai.ops.db.users import dump_users, role_from_roles_info, user_from_users_info
from paletai.ops.db.verify import verify
from paletai.ops.errors import OpsError
from tests.ops.conftest import game_doc, rich_docs, with_db

runner = CliRunner()
T = TypeVar("T")

COLLECTIONS = ("games", "likes", "tmp_a", "tmp_b", "users", "empty")


def _sync(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def _seed(client: Client, name: str) -> None:
    db = client[name]
    await db.games.insert_many([game_doc(i) for i in range(400)])
    await db.games.create_index([("created_at", -1), ("likes_count", -1)])
    await db.likes.insert_many([{"_id": f"g{i}:u{i % 7}", "n": i} for i in range(250)])
    await db.likes.create_index("n", unique=True)
    await db.tmp_a.insert_many([{"_id": f"a{i}"} for i in range(30)])
    await db.tmp_b.insert_many([{"_id": f"b{i}"} for i in range(20)])
    await db.users.insert_many(rich_docs())
    await db.users.create_index("when", expireAfterSeconds=10**9)  # far: nothing expires mid-test
    await db.create_collection("empty")


async def _raw_docs(client: Client, db: str, coll: str) -> dict[bytes, bytes]:
    raw = client.get_database(db, codec_options=RAW_CODEC)[coll]
    return {bson.encode({"_id": d["_id"]}): bytes(d.raw) async for d in raw.find()}


def _dump_docs(path: Path) -> dict[bytes, bytes]:
    docs = bson.decode_all(path.read_bytes(), RAW_CODEC)
    return {bson.encode({"_id": d["_id"]}): bytes(d.raw) for d in docs}


async def _index_shapes(client: Client, db: str, coll: str) -> set[Any]:
    cursor = await client[db][coll].list_indexes()
    return {index_shape(ix) for ix in await cursor.to_list()}


def _one_error_line(result: Result) -> str:
    """The command's output is one `error: ...` line, no traceback."""
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, result.output
    return errors[0]


# --- --parallel -------------------------------------------------------------------------------


async def test_parallel_backup_and_restore_equal_serial(
    mongo_client: Client,
    second_client: Client,
    mongo_uri: str,
    second_uri: str,
    fresh_name: str,
    tmp_path: Path,
) -> None:
    await _seed(mongo_client, fresh_name)
    source = with_db(mongo_uri, fresh_name)
    serial = await backup(source, tmp_path / "serial", parallel=1)
    parallel = await backup(source, tmp_path / "parallel", parallel=4)
    # Results in name order whatever order the collections finished in.
    assert [c.name for c in parallel.collections] == sorted(COLLECTIONS)
    assert [(c.name, c.documents, c.bytes) for c in parallel.collections] == [
        (c.name, c.documents, c.bytes) for c in serial.collections
    ]
    for name in COLLECTIONS:
        a = _dump_docs(tmp_path / "serial" / fresh_name / f"{name}.bson")
        b = _dump_docs(tmp_path / "parallel" / fresh_name / f"{name}.bson")
        assert a == b == await _raw_docs(mongo_client, fresh_name, name), name
        meta_a = json.loads(
            (tmp_path / "serial" / fresh_name / f"{name}.metadata.json").read_text()
        )
        meta_b = json.loads(
            (tmp_path / "parallel" / fresh_name / f"{name}.metadata.json").read_text()
        )
        assert meta_a["indexes"] == meta_b["indexes"]

    serial_db, parallel_db = fresh_name, fresh_name + "_p"
    one = await restore(with_db(second_uri, serial_db), tmp_path / "serial", parallel=1)
    many = await restore(
        second_uri,
        tmp_path / "parallel",
        parallel=4,
        mapper=NamespaceMapper(ns_from=[f"{fresh_name}.*"], ns_to=[f"{parallel_db}.*"]),
    )
    try:
        assert one.ok
        assert many.ok
        assert [c.namespace for c in many.collections] == [
            f"{parallel_db}.{n}" for n in sorted(COLLECTIONS)
        ]
        assert [(c.inserted, c.indexes, c.bytes) for c in many.collections] == [
            (c.inserted, c.indexes, c.bytes) for c in one.collections
        ]
        for name in COLLECTIONS:
            expected = await _raw_docs(mongo_client, fresh_name, name)
            assert await _raw_docs(second_client, serial_db, name) == expected, name
            assert await _raw_docs(second_client, parallel_db, name) == expected, name
            assert await _index_shapes(second_client, parallel_db, name) == await _index_shapes(
                second_client, serial_db, name
            )
        report = await verify(source, second_uri, target_db_name=parallel_db)
        assert report.identical, report.as_dict()
    finally:
        await second_client.drop_database(parallel_db)


@pytest.mark.parametrize("parallel", [1, 4])
async def test_progress_rows_stay_in_order_with_their_own_counts_and_clocks(
    mongo_client: Client,
    mongo_uri: str,
    second_uri: str,
    fresh_name: str,
    tmp_path: Path,
    parallel: int,
) -> None:
    await _seed(mongo_client, fresh_name)
    with collection_progress(quiet=True) as progress:
        dumped = await backup(
            with_db(mongo_uri, fresh_name), tmp_path / "d", parallel=parallel, progress=progress
        )
    with collection_progress(quiet=True) as restore_progress:
        restored = await restore(
            with_db(second_uri, fresh_name),
            tmp_path / "d",
            parallel=parallel,
            progress=restore_progress,
        )
    for rows, items in (
        (progress.tasks, [(c.name, c.documents, c.bytes) for c in dumped.collections]),
        (
            restore_progress.tasks,
            [(c.namespace, c.documents, c.bytes) for c in restored.collections],
        ),
    ):
        # One row per collection, in name order, ending at that collection's own figures.
        assert [(t.description, t.completed, t.total, t.fields["bytes"]) for t in rows] == [
            (name, docs, docs, size) for name, docs, size in items
        ]
        clocks = [(t.start_time, t.finished_time) for t in rows]
        assert all(start is not None and done is not None for start, done in clocks)
        if parallel == 1:
            # A queued row's clock starts when its collection does, after the one before ends.
            for (start, took), (next_start, _) in zip(clocks, clocks[1:], strict=False):
                assert next_start >= start + took


def _seed_for_failure(mongo_uri: str, name: str) -> None:
    async def seed() -> None:
        client = make_client(mongo_uri)
        db = client[name]
        await db.a_bad.insert_many([{"_id": f"x{i}"} for i in range(10)])
        for coll in ("b", "c", "d", "e", "f"):
            await db[coll].insert_many([{"_id": f"{coll}{i}"} for i in range(50)])
        await client.close()

    _sync(seed())


def test_a_failing_collection_stops_a_parallel_backup_with_one_line(
    mongo_uri: str, fresh_name: str, tmp_path: Path
) -> None:
    _seed_for_failure(mongo_uri, fresh_name)
    out = tmp_path / "dump"
    # Where a_bad's data file goes there is a directory: writing it fails at once.
    (out / fresh_name / "a_bad.bson").mkdir(parents=True)
    result = runner.invoke(
        db_app,
        ["backup", "--uri", with_db(mongo_uri, fresh_name), "--out", str(out), "--parallel", "2"],
    )
    assert result.exit_code == 1, result.output
    line = _one_error_line(result)
    assert f"backup of {fresh_name}.a_bad failed: Is a directory" in line
    assert "stopped)" in line
    # The collections queued behind the failure were never started.
    for late in ("d", "e", "f"):
        assert not (out / fresh_name / f"{late}.bson").exists()
        assert not (out / fresh_name / f"{late}.metadata.json").exists()


def test_a_failing_collection_stops_a_parallel_restore_with_one_line(
    mongo_uri: str, second_uri: str, second_client: Client, fresh_name: str, tmp_path: Path
) -> None:
    _seed_for_failure(mongo_uri, fresh_name)
    out = tmp_path / "dump"
    _sync(backup(with_db(mongo_uri, fresh_name), out))
    # A damaged data file: its documents cannot be read past the first one.
    bad = out / fresh_name / "a_bad.bson"
    bad.write_bytes(bad.read_bytes()[:40] + b"\xff\xff\xff\x7f garbage")
    result = runner.invoke(
        db_app,
        ["restore", "--uri", with_db(second_uri, fresh_name), "--dir", str(out), "--parallel", "2"],
    )
    assert result.exit_code == 1, result.output
    line = _one_error_line(result)
    assert f"restore of {fresh_name}.a_bad failed: " in line
    assert "a_bad.bson: truncated document" in line
    names = _sync(_collection_names(second_uri, fresh_name))
    assert not names & {"d", "e", "f"}


async def _collection_names(uri: str, name: str) -> set[str]:
    client = make_client(uri)
    try:
        return set(await client[name].list_collection_names())
    finally:
        await client.close()


async def test_a_failure_names_the_collection_and_what_completed(
    mongo_client: Client, mongo_uri: str, fresh_name: str, tmp_path: Path
) -> None:
    await mongo_client[fresh_name].a_bad.insert_one({"_id": 1})
    await mongo_client[fresh_name].b.insert_one({"_id": 1})
    (tmp_path / "d" / fresh_name / "b.bson").mkdir(parents=True)
    with pytest.raises(CollectionFailed, match=r"b failed: .*\(1 collections done, 0 stopped\)"):
        await backup(with_db(mongo_uri, fresh_name), tmp_path / "d", parallel=1)


def test_parallel_must_be_positive(mongo_uri: str, tmp_path: Path) -> None:
    result = runner.invoke(
        db_app, ["backup", "--uri", mongo_uri, "--out", str(tmp_path / "d"), "--parallel", "0"]
    )
    assert result.exit_code == 2
    assert "--parallel" in result.output
    assert not (tmp_path / "d").exists()


# --- --ns-exclude and --collection -------------------------------------------------------------


async def test_ns_exclude_on_backup_and_restore(
    mongo_client: Client,
    second_client: Client,
    mongo_uri: str,
    second_uri: str,
    fresh_name: str,
    tmp_path: Path,
) -> None:
    await _seed(mongo_client, fresh_name)
    out = tmp_path / "dump"
    result = await backup(
        with_db(mongo_uri, fresh_name), out, ns_exclude=[f"{fresh_name}.tmp_*", "*.empty"]
    )
    assert [c.name for c in result.collections] == ["games", "likes", "users"]
    assert sorted(p.name for p in (out / fresh_name).iterdir()) == sorted(
        f"{n}{ext}" for n in ("games", "likes", "users") for ext in (".bson", ".metadata.json")
    )
    restored = await restore(
        with_db(second_uri, fresh_name),
        out,
        mapper=NamespaceMapper(exclude=[f"{fresh_name}.l*"]),
    )
    assert [c.namespace for c in restored.collections] == [
        f"{fresh_name}.games",
        f"{fresh_name}.users",
    ]
    assert set(await second_client[fresh_name].list_collection_names()) == {"games", "users"}


async def test_ns_exclude_that_leaves_nothing_or_is_not_a_namespace(
    mongo_client: Client, mongo_uri: str, fresh_name: str, tmp_path: Path
) -> None:
    await mongo_client[fresh_name].games.insert_one({"_id": "g"})
    with pytest.raises(OpsError, match="leaves no collection"):
        await backup(with_db(mongo_uri, fresh_name), tmp_path / "d", ns_exclude=["*.*"])
    with pytest.raises(OpsError, match="not a namespace pattern.*<database>.<collection>"):
        await backup(with_db(mongo_uri, fresh_name), tmp_path / "d", ns_exclude=["games"])
    assert not (tmp_path / "d").exists()


async def test_collection_that_does_not_exist_names_the_ones_there(
    mongo_client: Client, mongo_uri: str, fresh_name: str, tmp_path: Path
) -> None:
    await mongo_client[fresh_name].games.insert_one({"_id": "g"})
    with pytest.raises(OpsError, match=r"--collection 'gmaes'.*collections there: games"):
        await backup(with_db(mongo_uri, fresh_name), tmp_path / "d", collection="gmaes")


# --- --query -----------------------------------------------------------------------------------


async def test_collection_and_query_in_extended_json(
    mongo_client: Client, mongo_uri: str, fresh_name: str, tmp_path: Path
) -> None:
    await _seed(mongo_client, fresh_name)
    games = mongo_client[fresh_name].games
    source = with_db(mongo_uri, fresh_name)
    since = dt.datetime(2024, 1, 1, 5, 0, tzinfo=dt.UTC)  # game_doc(i) is i minutes after 0:00
    by_date = '{"created_at": {"$gte": {"$date": "2024-01-01T05:00:00Z"}}}'
    result = await backup(source, tmp_path / "date", collection="games", query=by_date)
    assert [c.name for c in result.collections] == ["games"]
    assert result.documents == 100 == await games.count_documents({"created_at": {"$gte": since}})
    assert result.query == by_date
    assert result.to_result().collection == "games"
    dumped = _dump_docs(tmp_path / "date" / fresh_name / "games.bson")
    everything = await _raw_docs(mongo_client, fresh_name, "games")
    assert dumped
    assert all(everything[key] == raw for key, raw in dumped.items())
    assert {bson.decode(raw)["title"] for raw in dumped.values()} == {
        f"Game {i}" for i in range(300, 400)
    }
    assert sorted(p.name for p in (tmp_path / "date" / fresh_name).iterdir()) == [
        "games.bson",
        "games.metadata.json",
    ]

    # $oid, canonical form, and relaxed numbers give the documents they name.
    picked = [doc["_id"] async for doc in games.find({"likes_count": 3}).limit(2)]
    assert all(isinstance(i, ObjectId) for i in picked)
    oids = ", ".join(f'{{"$oid": "{i}"}}' for i in picked)
    by_id = f'{{"_id": {{"$in": [{oids}]}}}}'
    result = await backup(source, tmp_path / "oid", collection="games", query=by_id)
    ids = {
        bson.decode(raw)["_id"]
        for raw in _dump_docs(tmp_path / "oid" / fresh_name / "games.bson").values()
    }
    assert ids == set(picked)
    canonical = '{"likes_count": {"$gte": {"$numberInt": "15"}}}'
    relaxed = '{"likes_count": {"$gte": 15}}'
    a = await backup(source, tmp_path / "c", collection="games", query=canonical)
    b = await backup(source, tmp_path / "r", collection="games", query=relaxed)
    assert a.documents == b.documents == await games.count_documents({"likes_count": {"$gte": 15}})
    assert a.documents > 0


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ('{"created_at": {"$gte": ', "--query is not valid Extended JSON"),
        ('{"_id": {"$oid": "not-an-object-id"}}', "--query is not valid Extended JSON"),
        ('{"created_at": {"$date": {"$numberLong": "x"}}}', "--query is not valid Extended JSON"),
        ("[1, 2]", "--query must be a filter document"),
    ],
)
def test_a_bad_query_is_one_line_and_writes_nothing(
    mongo_uri: str, tmp_path: Path, query: str, says: str
) -> None:
    out = tmp_path / "d"
    result = runner.invoke(
        db_app,
        [
            "backup",
            "--uri",
            mongo_uri,
            "--out",
            str(out),
            "--collection",
            "games",
            "--query",
            query,
        ],
    )
    assert result.exit_code == 2, result.output
    line = _one_error_line(result)
    assert says in line
    assert '"$date"' in line  # an example of what works
    assert not out.exists()


async def test_a_query_the_server_refuses_is_one_line_before_anything_is_written(
    mongo_client: Client, mongo_uri: str, fresh_name: str, tmp_path: Path
) -> None:
    await mongo_client[fresh_name].games.insert_one({"_id": "g", "n": 1})
    with pytest.raises(OpsError, match=r"--query: the source refused the filter \(.*\$bogus"):
        await backup(
            with_db(mongo_uri, fresh_name),
            tmp_path / "d",
            collection="games",
            query='{"n": {"$bogus": 1}}',
        )
    assert not (tmp_path / "d").exists()


def test_query_without_collection_is_refused(mongo_uri: str, tmp_path: Path) -> None:
    result = runner.invoke(
        db_app, ["backup", "--uri", mongo_uri, "--out", str(tmp_path / "d"), "--query", "{}"]
    )
    assert result.exit_code == 2
    assert "--query needs --collection" in _one_error_line(result)


# --- --dry-run ---------------------------------------------------------------------------------


def test_backup_dry_run_writes_nothing_and_says_what_it_would(
    mongo_uri: str, fresh_name: str, tmp_path: Path
) -> None:
    async def seed() -> None:
        client = make_client(mongo_uri)
        await _seed(client, fresh_name)
        await client.close()

    _sync(seed())
    out = tmp_path / "dump"
    report = tmp_path / "dry.json"
    result = runner.invoke(
        db_app,
        [
            "backup",
            "--uri",
            with_db(mongo_uri, fresh_name),
            "--out",
            str(out),
            "--gzip",
            "--ns-exclude",
            f"{fresh_name}.tmp_*",
            "--dry-run",
            "--json",
            str(report),
        ],
    )
    assert result.exit_code == 0, result.output
    assert not out.exists()
    assert "dry run, nothing written" in result.output
    assert f"{out / fresh_name / 'games.bson.gz'}  400 documents" in result.output
    assert (
        f"would back up {fresh_name}: 4 collections, {650 + len(rich_docs())} documents"
        in result.output
    )
    written = json.loads(report.read_text())
    assert written["dry_run"] is True
    assert written["ns_exclude"] == [f"{fresh_name}.tmp_*"]
    assert "collection" not in written
    assert "query" not in written
    # tmp_a and tmp_b excluded
    assert {c["name"]: c["documents"] for c in written["collections"]} == {
        "empty": 0,
        "games": 400,
        "likes": 250,
        "users": len(rich_docs()),
    }


def test_restore_dry_run_leaves_the_target_as_it_was(
    mongo_uri: str, second_uri: str, fresh_name: str, tmp_path: Path
) -> None:
    async def seed() -> None:
        client = make_client(mongo_uri)
        await _seed(client, fresh_name)
        await client.close()
        target = make_client(second_uri)
        await target[fresh_name].games.insert_one({"_id": "already-here"})
        await target.close()

    _sync(seed())
    out = tmp_path / "dump"
    _sync(backup(with_db(mongo_uri, fresh_name), out))

    async def state() -> dict[str, list[Any]]:
        client = make_client(second_uri)
        try:
            names = sorted(await client[fresh_name].list_collection_names())
            return {
                "_databases": sorted(await client.list_database_names()),
                **{n: await client[fresh_name][n].find().to_list() for n in names},
            }
        finally:
            await client.close()

    before = _sync(state())
    target = with_db(second_uri, fresh_name)
    refused = runner.invoke(db_app, ["restore", "--uri", target, "--dir", str(out), "--dry-run"])
    assert refused.exit_code == 2, refused.output
    assert (
        f"{fresh_name}.games -> {fresh_name}.games: refused (not empty), 400 documents, 1 indexes"
        in refused.output
    )
    assert (
        f"{fresh_name}.likes -> {fresh_name}.likes: create, 250 documents, 1 indexes"
        in refused.output
    )
    assert "the target is not empty" in _one_error_line(refused)

    dropping = runner.invoke(
        db_app,
        [
            "restore",
            "--uri",
            target,
            "--dir",
            str(out),
            "--dry-run",
            "--drop",
            "--ns-exclude",
            f"{fresh_name}.tmp_b",
        ],
    )
    assert dropping.exit_code == 0, dropping.output
    assert (
        f"{fresh_name}.games -> {fresh_name}.games: drop and restore, 400 documents"
        in dropping.output
    )
    assert f"{fresh_name}.tmp_a -> {fresh_name}.tmp_a: create, 30 documents" in dropping.output
    assert "tmp_b" not in dropping.output
    assert _sync(state()) == before


# --- --include-users ---------------------------------------------------------------------------


def test_include_users_on_a_server_without_users_fails_in_one_line(
    mongo_uri: str, second_uri: str, fresh_name: str, tmp_path: Path
) -> None:
    """The stand-in has no authentication: it answers connectionStatus, usersInfo (and
    createUser) with `{ok: 1, result: []}`. Reporting "0 users" there would pretend."""
    _seed_for_failure(mongo_uri, fresh_name)
    out = tmp_path / "dump"
    result = runner.invoke(
        db_app,
        ["backup", "--uri", with_db(mongo_uri, fresh_name), "--out", str(out), "--include-users"],
    )
    assert result.exit_code == 2, result.output
    line = _one_error_line(result)
    assert "--include-users" in line
    assert "connectionStatus without authInfo" in line
    assert not out.exists()

    _sync(backup(with_db(mongo_uri, fresh_name), out))
    target = with_db(second_uri, fresh_name)
    no_users = runner.invoke(
        db_app, ["restore", "--uri", target, "--dir", str(out), "--include-users"]
    )
    assert no_users.exit_code == 2
    assert "holds no users or roles" in _one_error_line(no_users)

    # A dump that holds users (mongodump's layout) on a target without users: refused before
    # anything is written.
    (out / fresh_name / f"{USERS_FILE}.bson").write_bytes(
        bson.encode({"_id": f"{fresh_name}.bob", "user": "bob", "db": fresh_name, "roles": []})
    )
    refused = runner.invoke(
        db_app, ["restore", "--uri", target, "--dir", str(out), "--include-users"]
    )
    assert refused.exit_code == 2
    assert "connectionStatus without authInfo" in _one_error_line(refused)
    assert not _sync(_collection_names(second_uri, fresh_name))

    # Without --include-users, the users file is not mistaken for a collection.
    plain = runner.invoke(db_app, ["restore", "--uri", target, "--dir", str(out)])
    assert plain.exit_code == 0, plain.output
    assert _sync(_collection_names(second_uri, fresh_name)) == {"a_bad", "b", "c", "d", "e", "f"}


async def test_users_are_dumped_in_mongodumps_layout(
    mongo_client: Client, mongo_uri: str, fresh_name: str, tmp_path: Path
) -> None:
    """The files mongodump --db X --dumpDbUsersAndRoles writes (mongo-tools prepare.go), from
    admin.system.users/roles filtered by db; here they are empty (the stand-in has no users)."""
    from paletai.ops.db.common import connect

    client = await connect(mongo_uri, role="source")
    try:
        count = await dump_users(client, fresh_name, tmp_path, compress=False, uri=mongo_uri)
    finally:
        await client.close()
    assert (count.users, count.roles) == (0, 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == [  # noqa: ASYNC240 - a test's listing
        "$admin.system.roles.bson",
        "$admin.system.users.bson",
        "$admin.system.version.bson",
    ]


def test_users_info_and_roles_info_entries_take_the_system_collections_shape() -> None:
    """Where the user may not read admin.system.users, backup asks usersInfo/rolesInfo; their
    entries (as MongoDB's manual shows them) are written as the documents mongodump writes."""
    user_id = uuid.uuid4()
    credentials = {"SCRAM-SHA-256": {"iterationCount": 15000, "salt": "c2FsdA==", "storedKey": "k"}}
    info = {
        "_id": "home.Kari",
        "userId": user_id,
        "user": "Kari",
        "db": "home",
        "mechanisms": ["SCRAM-SHA-256"],
        "credentials": credentials,
        "customData": {"zipCode": "94109"},
        "roles": [{"role": "read", "db": "home"}],
    }
    assert list(user_from_users_info(info).items()) == [
        ("_id", "home.Kari"),
        ("userId", user_id),
        ("user", "Kari"),
        ("db", "home"),
        ("credentials", credentials),
        ("roles", [{"role": "read", "db": "home"}]),
        ("customData", {"zipCode": "94109"}),
    ]
    without = {k: v for k, v in info.items() if k != "credentials"}
    with pytest.raises(OpsError, match="no credentials for user 'Kari'"):
        user_from_users_info(without)

    role = {
        "role": "associate",
        "db": "products",
        "isBuiltin": False,
        "roles": [{"role": "readWrite", "db": "products"}],
        "inheritedRoles": [{"role": "readWrite", "db": "products"}],
        "privileges": [
            {
                "resource": {"db": "products", "collection": ""},
                "actions": ["bypassDocumentValidation"],
            }
        ],
        "inheritedPrivileges": [
            {"resource": {"db": "products", "collection": ""}, "actions": ["find"]}
        ],
    }
    assert role_from_roles_info(role) == {
        "_id": "products.associate",
        "role": "associate",
        "db": "products",
        "privileges": role["privileges"],
        "roles": [{"role": "readWrite", "db": "products"}],
    }

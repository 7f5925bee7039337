"""backup -> restore -> verify, stock mongodump layouts, and the operator mistakes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import bson
import pytest
from bson import ObjectId, json_util
from typer.testing import CliRunner

from paletai.db.client import Client
from paletai.ops.db.backup import backup
from paletai.ops.db.cli import db_app
from paletai.ops.db.common import RAW_CODEC, connect, index_shape
from paletai.ops.db.namespaces import NamespaceMapper
from paletai.ops.db.restore import restore
from paletai.ops.db.verify import verify
from paletai.ops.errors import OpsError
from tests.ops.conftest import game_doc, rich_docs, with_db

runner = CliRunner()


async def _seed(client: Client, name: str) -> None:
    db = client[name]
    await db.games.insert_many([game_doc(i) for i in range(300)])
    await db.games.create_index([("created_at", -1), ("likes_count", -1)])
    await db.users.insert_many(rich_docs())
    await db.users.create_index("text", unique=True)
    await db.users.create_index("when", expireAfterSeconds=10**9)
    await db.create_collection("empty")


async def _raw_docs(client: Client, db: str, coll: str) -> dict[bytes, bytes]:
    raw = client.get_database(db, codec_options=RAW_CODEC)[coll]
    return {bson.encode({"_id": d["_id"]}): bytes(d.raw) async for d in raw.find()}


def _dump_docs(path: Path) -> dict[bytes, bytes]:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    docs = bson.decode_all(data, RAW_CODEC)
    return {bson.encode({"_id": d["_id"]}): bytes(d.raw) for d in docs}


@pytest.mark.parametrize("compress", [False, True])
async def test_round_trip_is_identical(
    mongo_client: Client,
    second_client: Client,
    mongo_uri: str,
    second_uri: str,
    fresh_name: str,
    tmp_path: Path,
    compress: bool,
) -> None:
    await _seed(mongo_client, fresh_name)
    out = tmp_path / "dump"
    result = await backup(with_db(mongo_uri, fresh_name), out, compress=compress)
    assert {c.name for c in result.collections} == {"games", "users", "empty"}

    ext = ".gz" if compress else ""
    db_dir = out / fresh_name
    # The dump holds exactly the bytes the server returns: types, field order, unicode.
    assert _dump_docs(db_dir / f"users.bson{ext}") == await _raw_docs(
        mongo_client, fresh_name, "users"
    )
    meta_text = (
        gzip.decompress((db_dir / f"users.metadata.json{ext}").read_bytes()).decode()
        if compress
        else (db_dir / "users.metadata.json").read_text()
    )
    meta = json.loads(meta_text)
    assert set(meta) >= {"options", "indexes", "uuid", "collectionName", "type"}
    assert meta["collectionName"] == "users"
    assert len(meta["uuid"]) == 32
    assert '"$numberInt"' in meta_text  # canonical Extended JSON v2
    empty_meta = json.loads(
        gzip.decompress((db_dir / f"empty.metadata.json{ext}").read_bytes())
        if compress
        else (db_dir / "empty.metadata.json").read_text()
    )
    assert isinstance(empty_meta["indexes"], list)
    assert (db_dir / f"empty.bson{ext}").exists()
    assert "ServerVersion" in json.loads((out / "prelude.json").read_text())

    restored = await restore(with_db(second_uri, fresh_name), out)
    assert restored.ok
    assert restored.total("inserted") == 303
    report = await verify(with_db(mongo_uri, fresh_name), with_db(second_uri, fresh_name))
    assert report.identical, report.as_dict()
    names = {c.name for c in report.collections}
    assert names == {"games", "users", "empty"}
    users = next(c for c in report.collections if c.name == "users")
    assert users.source_count == users.target_count == 3

    # Restored indexes keep unique and TTL.
    cursor = await second_client[fresh_name].users.list_indexes()
    shapes = {index_shape(ix) for ix in await cursor.to_list()}
    assert any(s.unique and s.key == (("text", "1"),) for s in shapes)
    assert any(s.ttl == 10**9 for s in shapes)


async def test_restore_refuses_non_empty_target_and_force_converges(
    mongo_client: Client, mongo_uri: str, fresh_name: str, tmp_path: Path
) -> None:
    await mongo_client[fresh_name].games.insert_many([game_doc(i) for i in range(50)])
    out = tmp_path / "dump"
    await backup(with_db(mongo_uri, fresh_name), out)
    target_db = fresh_name + "_copy"
    mapper = NamespaceMapper(ns_from=[f"{fresh_name}.*"], ns_to=[f"{target_db}.*"])
    first = await restore(mongo_uri, out, mapper=mapper)
    assert first.total("inserted") == 50

    with pytest.raises(OpsError, match="not empty.*--drop.*--force"):
        await restore(mongo_uri, out, mapper=mapper)

    # Simulate an interrupted restore: some documents missing on the target.
    victims = [d["_id"] async for d in mongo_client[target_db].games.find().limit(7)]
    await mongo_client[target_db].games.delete_many({"_id": {"$in": victims}})
    second = await restore(mongo_uri, out, mapper=mapper, force=True)
    assert second.ok
    assert second.total("inserted") == 7
    assert second.total("duplicates") == 43
    report = await verify(mongo_uri, mongo_uri, db_name=fresh_name, target_db_name=target_db)
    assert report.identical

    dropped = await restore(mongo_uri, out, mapper=mapper, drop=True)
    assert dropped.total("inserted") == 50
    assert dropped.total("duplicates") == 0
    await mongo_client.drop_database(target_db)


def _write_stock_dump(root: Path, db: str, docs: list[dict[str, object]]) -> None:
    """A dump directory as stock mongodump (100.x) writes it, per its documented format."""
    db_dir = root / db
    db_dir.mkdir(parents=True)
    (root / "prelude.json").write_text('{"ServerVersion":"7.0.5","ToolVersion":"100.9.4"}')
    with gzip.open(db_dir / "users.bson.gz", "wb") as out:
        for doc in docs:
            out.write(bson.encode(doc))
    # Canonical v2 metadata, gzip, with a compound unique index and a TTL index.
    meta = {
        "indexes": [
            {"v": 2, "key": {"_id": 1}, "name": "_id_"},
            {"v": 2, "key": {"email": 1, "tenant": -1}, "name": "e_t", "unique": True},
            {"v": 2, "key": {"seen": 1}, "name": "seen_1", "expireAfterSeconds": 3600},
        ],
        "uuid": "9f1c3a6a2f3c4b46a1d5e0c2a3b4c5d6",
        "collectionName": "users",
        "type": "collection",
    }
    text = json_util.dumps({"options": {}, **meta}, json_options=json_util.CANONICAL_JSON_OPTIONS)
    with gzip.open(db_dir / "users.metadata.json.gz", "wt") as out_text:
        out_text.write(text)
    # An empty collection with `indexes: []`, plain files.
    (db_dir / "empty.bson").write_bytes(b"")
    (db_dir / "empty.metadata.json").write_text(
        '{"options":{},"indexes":[],"uuid":"00112233445566778899aabbccddeeff",'
        '"collectionName":"empty","type":"collection"}'
    )
    # Legacy metadata (mongodump 3.x): plain JSON numbers, `ns` in each index, no uuid.
    with (db_dir / "legacy.bson").open("wb") as out:
        out.write(bson.encode({"_id": "a", "n": 1}))
        out.write(bson.encode({"_id": "b", "n": 2}))
    (db_dir / "legacy.metadata.json").write_text(
        json.dumps(
            {
                "options": {},
                "indexes": [
                    {"v": 1, "key": {"_id": 1}, "name": "_id_", "ns": f"{db}.legacy"},
                    {"v": 1, "key": {"n": 1.0}, "name": "n_1", "ns": f"{db}.x", "unique": True},
                ],
            }
        )
    )


async def test_restore_reads_stock_mongodump_layout(
    mongo_client: Client, mongo_uri: str, fresh_name: str, tmp_path: Path
) -> None:
    docs = [
        {"_id": ObjectId(), "email": f"u{i}@example.com", "tenant": "t", "seen": None}
        for i in range(25)
    ]
    _write_stock_dump(tmp_path / "dump", fresh_name, docs)
    result = await restore(mongo_uri, tmp_path / "dump")
    assert result.ok
    by_name = {c.namespace: c for c in result.collections}
    assert by_name[f"{fresh_name}.users"].inserted == 25
    assert by_name[f"{fresh_name}.users"].indexes == 2
    assert by_name[f"{fresh_name}.legacy"].inserted == 2
    assert by_name[f"{fresh_name}.empty"].inserted == 0
    db = mongo_client[fresh_name]
    assert set(await db.list_collection_names()) >= {"users", "legacy", "empty"}
    restored = {d["email"] async for d in db.users.find()}
    assert restored == {d["email"] for d in docs}
    shapes = {index_shape(ix) for ix in await (await db.users.list_indexes()).to_list()}
    assert any(s.unique and [k for k, _ in s.key] == ["email", "tenant"] for s in shapes)
    assert any(s.ttl == 3600 for s in shapes)
    legacy = {index_shape(ix) for ix in await (await db.legacy.list_indexes()).to_list()}
    assert any(s.unique and s.key == (("n", "1"),) for s in legacy)


async def test_restore_rejects_a_directory_that_is_not_a_dump(
    mongo_uri: str, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(OpsError, match="is not a dump"):
        await restore(mongo_uri, tmp_path)
    bad = tmp_path / "db1"
    bad.mkdir()
    (bad / "x.bson").write_bytes(b"this is not bson at all")
    with pytest.raises(OpsError, match="not BSON"):
        await restore(mongo_uri, tmp_path)


def test_cli_reports_unreachable_host(tmp_path: Path) -> None:
    result = runner.invoke(
        db_app,
        [
            "backup",
            "--uri",
            "mongodb://127.0.0.1:9/?directConnection=true&serverSelectionTimeoutMS=300",
            "--out",
            str(tmp_path / "d"),
        ],
    )
    assert result.exit_code == 2
    # The URI's timeout wins over the kit's 5 s (docs/db-operations.md).
    assert "cannot reach the source MongoDB at 127.0.0.1:9 within 0.3 s" in " ".join(
        result.output.split()
    )


def test_cli_backup_restore_verify(
    mongo_uri: str, second_uri: str, fresh_name: str, tmp_path: Path
) -> None:
    import asyncio

    async def seed() -> None:
        from paletai.db.client import make_client

        client = make_client(mongo_uri)
        await client[fresh_name].games.insert_many([game_doc(i) for i in range(40)])
        await client.close()

    asyncio.run(seed())
    src, dst = with_db(mongo_uri, fresh_name), with_db(second_uri, fresh_name)
    out = tmp_path / "dump"
    assert runner.invoke(db_app, ["backup", "--uri", src, "--out", str(out)]).exit_code == 0
    res = runner.invoke(db_app, ["restore", "--uri", dst, "--dir", str(out)])
    assert res.exit_code == 0, res.output
    report_path = tmp_path / "verify.json"
    res = runner.invoke(
        db_app, ["verify", "--source", src, "--target", dst, "--json", str(report_path)]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(report_path.read_text())["identical"] is True
    res = runner.invoke(db_app, ["restore", "--uri", dst, "--dir", str(out)])
    assert res.exit_code == 2
    assert "not empty" in res.output


def test_namespace_mapper_include_and_rename() -> None:
    mapper = NamespaceMapper(
        include=["paletai.*", "other.keep"],
        ns_from=["paletai.$coll$"],
        ns_to=["paletai_new.$coll$"],
    )
    assert mapper.map("paletai.games") == "paletai_new.games"
    assert mapper.map("other.keep") == "other.keep"
    assert mapper.map("other.drop") is None
    with pytest.raises(OpsError, match="pairs"):
        NamespaceMapper(ns_from=["a.*"])
    with pytest.raises(OpsError, match="wildcards"):
        NamespaceMapper(ns_from=["a.*"], ns_to=["b.c"])


async def test_backup_of_a_database_with_no_collections_names_the_existing_ones(
    mongo_client: Client, mongo_uri: str, fresh_name: str, tmp_path: Path
) -> None:
    await mongo_client[fresh_name].games.insert_one({"_id": "g"})
    with pytest.raises(OpsError, match=f"has no collections; databases there: .*{fresh_name}"):
        await backup(with_db(mongo_uri, fresh_name + "_typo"), tmp_path / "d")


async def test_a_failed_login_names_the_host_and_user_not_the_password(mongo_uri: str) -> None:
    # The stand-in cannot authenticate (its SASL answer lacks a payload); MongoDB answers
    # code 18, which gets its own message. Either way: one line, host and user, no password.
    with_user = mongo_uri.replace("mongodb://", "mongodb://bob:s3cret-pw@")
    with pytest.raises(OpsError) as caught:
        await connect(with_user, role="source", timeout_ms=2000)
    message = str(caught.value)
    assert "127.0.0.1" in message
    assert "bob" in message
    assert "authenticat" in message
    assert "s3cret-pw" not in message

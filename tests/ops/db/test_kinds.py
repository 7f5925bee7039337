"""Every collection kind and option: the pure pieces (definition -> create command, option
comparison) on listCollections/listIndexes documents as MongoDB returns them, and end to end
against the embedded stand-in for what it really does (it accepts `create` with any options,
keeps none of them, and reports no options: each such loss must be a failed, named line)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import bson
import pytest
from bson import Int64, ObjectId, json_util
from typer.testing import CliRunner

from paletai.db.client import Client
from paletai.ops.db import kinds, verify
from paletai.ops.db.backup import dump_collection
from paletai.ops.db.cli import db_app
from paletai.ops.db.common import RAW_CODEC, RawDatabase, connect
from paletai.ops.db.dumpfmt import read_dump
from paletai.ops.db.kinds import (
    CollectionSpec,
    KindNotKept,
    collection_specs,
    compare_index_options,
    compare_options,
    create_command,
    ensure_collection,
    options_not_kept,
)
from tests.ops.conftest import with_db

runner = CliRunner()

# --- listCollections entries as MongoDB 7.0 returns them -----------------------------------------

FULL_COLLATION = {
    "locale": "fr",
    "caseLevel": False,
    "caseFirst": "off",
    "strength": 2,
    "numericOrdering": False,
    "alternate": "non-ignorable",
    "maxVariable": "punct",
    "normalization": False,
    "backwards": False,
    "version": "57.1",
}
VIEW_INFO = {
    "name": "public_games",
    "type": "view",
    "options": {"viewOn": "games", "pipeline": [{"$match": {"public": True}}]},
    "info": {"readOnly": True},
}
TIMESERIES_INFO = {
    "name": "metrics",
    "type": "timeseries",
    "options": {
        "expireAfterSeconds": Int64(86400),
        "timeseries": {
            "timeField": "t",
            "metaField": "m",
            "granularity": "seconds",
            "bucketMaxSpanSeconds": 3600,
        },
    },
    "info": {"readOnly": False},
}
CAPPED_INFO = {
    "name": "events",
    "type": "collection",
    "options": {"capped": True, "size": 1048576, "max": 1000},
    "info": {"readOnly": False, "uuid": bson.Binary(b"\x11" * 16, 4)},
    "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"},
}
VALIDATED_INFO = {
    "name": "users",
    "type": "collection",
    "options": {
        "validator": {"$jsonSchema": {"bsonType": "object", "required": ["email"]}},
        "validationLevel": "strict",
        "validationAction": "error",
        "collation": FULL_COLLATION,
    },
    "info": {"readOnly": False},
}


def test_definitions_become_the_create_commands_mongodump_metadata_implies() -> None:
    view = CollectionSpec.from_info(VIEW_INFO)
    assert (view.kind, view.data_collection) == ("view", None)
    assert create_command(view) == {
        "create": "public_games",
        "viewOn": "games",
        "pipeline": [{"$match": {"public": True}}],
    }
    series = CollectionSpec.from_info(TIMESERIES_INFO)
    assert series.data_collection == "system.buckets.metrics"
    # bucketMaxSpanSeconds is derived from the granularity: create refuses it next to another.
    assert create_command(series) == {
        "create": "metrics",
        "expireAfterSeconds": 86400,
        "timeseries": {"timeField": "t", "metaField": "m", "granularity": "seconds"},
    }
    custom = CollectionSpec(
        "m2", "timeseries", {"timeseries": {"timeField": "t", "bucketMaxSpanSeconds": 60}}
    )
    assert create_command(custom)["timeseries"] == {"timeField": "t", "bucketMaxSpanSeconds": 60}
    capped = CollectionSpec.from_info(CAPPED_INFO)
    assert create_command(capped) == {
        "create": "events",
        "capped": True,
        "size": 1048576,
        "max": 1000,
    }
    assert create_command(CollectionSpec.from_info(VALIDATED_INFO))["validationLevel"] == "strict"


def test_a_definition_without_its_essentials_is_refused_by_name() -> None:
    with pytest.raises(kinds.OpsError, match="view 'v' has no viewOn"):
        create_command(CollectionSpec("v", "view", {"pipeline": []}))
    with pytest.raises(kinds.OpsError, match="time-series collection 'ts' has no timeseries"):
        create_command(CollectionSpec("ts", "timeseries", {}))


def test_what_the_target_kept_is_read_back_not_assumed() -> None:
    asked = CollectionSpec("users", "collection", {"collation": {"locale": "fr", "strength": 2}})
    # MongoDB reports the collation with every default filled in: that keeps what was asked.
    assert (
        options_not_kept(asked, CollectionSpec("users", "collection", VALIDATED_INFO["options"]))
        == []
    )
    # The stand-in reports a plain collection with no options.
    assert options_not_kept(asked, CollectionSpec("users")) == ["collation"]
    capped = CollectionSpec.from_info(CAPPED_INFO)
    assert options_not_kept(capped, CollectionSpec("events")) == ["capped", "size", "max"]
    wrong_size = CollectionSpec("events", "collection", {"capped": True, "size": 4096, "max": 1000})
    assert options_not_kept(capped, wrong_size) == ["size"]
    series = CollectionSpec.from_info(TIMESERIES_INFO)
    assert options_not_kept(series, CollectionSpec("metrics")) == ["type timeseries"]
    assert options_not_kept(series, series) == []


def test_collection_options_are_compared_option_by_option() -> None:
    users = CollectionSpec.from_info(VALIDATED_INFO)
    assert compare_options(users, users) == []
    plain = CollectionSpec("users")
    lines = compare_options(users, plain)
    assert [line.split(":")[0] for line in lines] == [
        "option collation",
        "option validationAction",
        "option validationLevel",
        "option validator",
    ]
    assert 'source {"$jsonSchema"' in lines[3]
    assert lines[3].endswith("target absent")
    capped = CollectionSpec.from_info(CAPPED_INFO)
    smaller = CollectionSpec("events", "collection", {"capped": True, "size": 1048576, "max": 10})
    assert compare_options(capped, smaller) == ["option max: source 1000, target 10"]
    # Int64 and int32 of one value are one value.
    as_int64 = CollectionSpec(
        "events", "collection", {"capped": True, "size": Int64(1048576), "max": 1000}
    )
    assert compare_options(capped, as_int64) == []
    view = CollectionSpec.from_info(VIEW_INFO)
    assert compare_options(view, CollectionSpec("public_games")) == [
        "type: source view, target collection"
    ]
    other_pipeline = CollectionSpec(
        "public_games", "view", {"viewOn": "games", "pipeline": [{"$match": {"public": False}}]}
    )
    assert compare_options(view, other_pipeline) == [
        'option pipeline: source [{"$match": {"public": true}}], '
        'target [{"$match": {"public": false}}]'
    ]


def test_fields_one_server_version_reports_and_another_not_are_no_difference() -> None:
    series = CollectionSpec.from_info(TIMESERIES_INFO)
    newer = dict(TIMESERIES_INFO["options"])  # type: ignore[arg-type]
    newer["timeseries"] = {**newer["timeseries"], "bucketRoundingSeconds": 3600}
    assert compare_options(series, CollectionSpec("metrics", "timeseries", newer)) == []
    coarser = dict(newer)
    coarser["timeseries"] = {**newer["timeseries"], "granularity": "hours"}
    assert compare_options(series, CollectionSpec("metrics", "timeseries", coarser)) != []
    no_version = {k: v for k, v in FULL_COLLATION.items() if k != "version"}
    a = CollectionSpec("c", "collection", {"collation": FULL_COLLATION})
    assert compare_options(a, CollectionSpec("c", "collection", {"collation": no_version})) == []


# --- listIndexes entries as MongoDB returns them -------------------------------------------------

EMAIL_INDEX = {
    "v": 2,
    "key": {"email": 1},
    "name": "email_1",
    "unique": True,
    "partialFilterExpression": {"deleted": False},
    "collation": FULL_COLLATION,
}


def _with(spec: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    out = {**spec, **changes}
    return {k: v for k, v in out.items() if v is not None}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"partialFilterExpression": {"deleted": True}},
            'option partialFilterExpression: source {"deleted": false}, target {"deleted": true}',
        ),
        ({"partialFilterExpression": None}, "option partialFilterExpression: source {"),
        ({"collation": {**FULL_COLLATION, "strength": 1}}, "option collation: source {"),
        ({"hidden": True}, "option hidden: source absent, target true"),
        ({"sparse": True}, "option sparse: source absent, target true"),
    ],
)
def test_indexes_of_one_key_that_differ_in_one_option_are_named(
    change: dict[str, Any], expected: str
) -> None:
    source = [{"v": 2, "key": {"_id": 1}, "name": "_id_"}, EMAIL_INDEX]
    target = [
        {"v": 2, "key": {"_id": 1}, "name": "_id_"},
        _with(EMAIL_INDEX, name="idx_users_email", **change),
    ]
    lines = compare_index_options(source, target)
    assert len(lines) == 1
    assert lines[0].startswith("index {email: 1} unique: ")
    assert expected in lines[0]


def test_index_options_that_mean_the_same_are_the_same() -> None:
    ttl = {"v": 2, "key": {"seen": 1}, "name": "seen_1", "expireAfterSeconds": 3600}
    same_ttl = {"v": 1, "key": {"seen": 1.0}, "name": "other", "expireAfterSeconds": Int64(3600)}
    explicit_false = {"v": 2, "key": {"x": 1}, "name": "x_1", "unique": False, "sparse": False}
    assert compare_index_options([ttl, {"key": {"x": 1}}], [same_ttl, explicit_false]) == []


def test_text_and_2dsphere_index_options_are_compared() -> None:
    text = {
        "v": 2,
        "key": {"_fts": "text", "_ftsx": 1},
        "name": "title_text_description_text",
        "weights": {"title": 10, "description": 1},
        "default_language": "english",
        "language_override": "language",
        "textIndexVersion": 3,
    }
    geo = {"v": 2, "key": {"loc": "2dsphere"}, "name": "loc_2dsphere", "2dsphereIndexVersion": 3}
    lines = compare_index_options(
        [text, geo],
        [
            _with(text, weights={"title": 1, "description": 1}, default_language="french"),
            _with(geo, **{"2dsphereIndexVersion": 2}),
        ],
    )
    assert lines == [
        'index {_fts: text, _ftsx: 1}: option default_language: source "english", target "french"',
        'index {_fts: text, _ftsx: 1}: option weights: source {"title": 10, "description": 1}, '
        'target {"title": 1, "description": 1}',
        "index {loc: 2dsphere}: option 2dsphereIndexVersion: source 3, target 2",
    ]


def test_two_indexes_on_one_key_pair_up_before_differences_are_named() -> None:
    french = _with(EMAIL_INDEX, partialFilterExpression=None)
    german = _with(french, collation={**FULL_COLLATION, "locale": "de"}, name="email_de")
    # Same two indexes in another order: no difference.
    assert compare_index_options([french, german], [german, french]) == []
    lines = compare_index_options([french, german], [french])
    assert len(lines) == 1
    assert lines[0].startswith("index {email: 1} unique {")
    assert lines[0].endswith(": missing in target")
    assert '"locale": "de"' in lines[0]


# --- a stock-layout dump with every kind, restored against the stand-in --------------------------


def _write_dump_with_every_kind(root: Path, db: str) -> None:
    """A dump as stock mongodump (100.x) writes it from MongoDB 7.0: a plain collection, a
    view (metadata only), a time-series collection (metadata + its buckets) and a capped one."""
    db_dir = root / db
    db_dir.mkdir(parents=True)
    (root / "prelude.json").write_text('{"ServerVersion":"7.0.5","ToolVersion":"100.9.4"}')
    canonical = json_util.CANONICAL_JSON_OPTIONS

    def meta(name: str, kind: str, options: dict[str, Any], indexes: list[Any]) -> None:
        doc = {
            "options": options,
            "indexes": indexes,
            "uuid": ObjectId().binary.hex() + "abcdabcd",
            "collectionName": name,
            "type": kind,
        }
        (db_dir / f"{name}.metadata.json").write_text(json_util.dumps(doc, json_options=canonical))

    id_index = {"v": 2, "key": {"_id": 1}, "name": "_id_"}
    meta("games", "collection", {}, [id_index])
    (db_dir / "games.bson").write_bytes(
        b"".join(bson.encode({"_id": f"g{i}", "public": i % 2 == 0}) for i in range(10))
    )
    meta("public_games", "view", VIEW_INFO["options"], [])  # type: ignore[arg-type]
    meta("metrics", "timeseries", TIMESERIES_INFO["options"], [])  # type: ignore[arg-type]
    when = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
    bucket = {
        "_id": ObjectId(),
        "control": {"version": 1, "min": {"t": when, "v": 1}, "max": {"t": when, "v": 2}},
        "meta": "sensor-1",
        "data": {"t": {"0": when, "1": when}, "v": {"0": 1, "1": 2}},
    }
    (db_dir / "system.buckets.metrics.bson").write_bytes(bson.encode(bucket))
    meta("events", "collection", CAPPED_INFO["options"], [id_index])  # type: ignore[arg-type]
    (db_dir / "events.bson").write_bytes(b"".join(bson.encode({"_id": i}) for i in range(3)))


def test_a_stock_dump_is_read_with_every_kind(tmp_path: Path) -> None:
    _write_dump_with_every_kind(tmp_path / "dump", "shop")
    found = {c.name: c for c in read_dump(tmp_path / "dump")}
    assert set(found) == {"games", "public_games", "metrics", "events"}
    assert (found["public_games"].kind, found["public_games"].data_path) == ("view", None)
    assert found["metrics"].kind == "timeseries"
    assert found["metrics"].data_path == tmp_path / "dump/shop/system.buckets.metrics.bson"
    assert found["events"].options["capped"] is True


def test_restore_on_a_target_that_cannot_hold_a_kind_fails_naming_each_one(
    mongo_uri: str, fresh_name: str, tmp_path: Path
) -> None:
    """The stand-in accepts `create` with viewOn, timeseries or capped, and makes a plain
    collection each time: restore must say so for each one and exit 1, never pass quietly."""
    _write_dump_with_every_kind(tmp_path / "dump", fresh_name)
    out = tmp_path / "restore.json"
    result = runner.invoke(
        db_app,
        ["restore", "--uri", mongo_uri, "--dir", str(tmp_path / "dump"), "--json", str(out)],
    )
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert f"failed {fresh_name}.public_games: the target cannot hold view" in text
    assert f"failed {fresh_name}.metrics: the target cannot hold time-series collection" in text
    events = f"failed {fresh_name}.events: the target created {fresh_name}.events without"
    assert f"{events} its options capped, size, max" in text
    assert f"{fresh_name}.games -> {fresh_name}.games: 10 inserted" in text
    data = json.loads(out.read_text())
    assert data["ok"] is False
    by_name = {c["namespace"].split(".", 1)[1]: c for c in data["collections"]}
    assert by_name["games"]["problem"] is None
    assert by_name["public_games"]["kind"] == "view"
    assert "cannot hold view" in by_name["public_games"]["problem"]
    assert by_name["events"]["inserted"] == 3  # a plain collection still gets its documents


async def test_what_restore_leaves_on_a_target_that_cannot_hold_a_kind(
    mongo_uri: str, mongo_client: Client, fresh_name: str, tmp_path: Path
) -> None:
    from paletai.ops.db.restore import restore

    _write_dump_with_every_kind(tmp_path / "dump", fresh_name)
    result = await restore(mongo_uri, tmp_path / "dump")
    assert not result.ok
    problems = {c.namespace.split(".", 1)[1]: c.problem for c in result.collections}
    assert problems["games"] is None
    assert all(problems[name] for name in ("public_games", "metrics", "events"))
    # The plain collections the server made for the view and the time-series are dropped again.
    assert sorted(await mongo_client[fresh_name].list_collection_names()) == ["events", "games"]
    assert await mongo_client[fresh_name].games.count_documents({}) == 10


# --- creating a kind, end to end against the stand-in ---------------------------------------------


async def test_ensure_collection_creates_plain_ones_and_names_what_it_cannot(
    mongo_uri: str, fresh_name: str
) -> None:
    client = await connect(mongo_uri, role="target")
    try:
        db: RawDatabase = client.get_database(fresh_name, codec_options=RAW_CODEC)
        assert await ensure_collection(db, CollectionSpec("plain")) is True
        assert await ensure_collection(db, CollectionSpec("plain")) is False  # already there
        with pytest.raises(KindNotKept, match=rf"cannot hold view {fresh_name}\.public_games"):
            await ensure_collection(db, CollectionSpec.from_info(VIEW_INFO))
        assert "public_games" not in await db.list_collection_names()
        # An existing plain collection where a view belongs is not taken for the view.
        with pytest.raises(KindNotKept, match="exists on the target as a collection, not a view"):
            await ensure_collection(db, CollectionSpec("plain", "view", {"viewOn": "x"}))
        with pytest.raises(KindNotKept, match="without the source's options validator"):
            await ensure_collection(
                db,
                CollectionSpec("plain", "collection", VALIDATED_INFO["options"]),  # type: ignore[arg-type]
            )
        assert KindNotKept.exit_code == 1
    finally:
        await client.close()


async def test_backup_writes_a_view_as_its_definition_only(
    mongo_uri: str, mongo_client: Client, fresh_name: str, tmp_path: Path
) -> None:
    """The stand-in cannot make a view, so the definition is handed in as a server gives it;
    the dump is then what stock mongodump writes: metadata of type view, no .bson."""
    await mongo_client[fresh_name].games.insert_one({"_id": "g1"})
    client = await connect(mongo_uri, role="source")
    try:
        db = client.get_database(fresh_name, codec_options=RAW_CODEC)
        db_dir = tmp_path / "dump" / fresh_name
        db_dir.mkdir(parents=True)
        view = CollectionSpec.from_info(VIEW_INFO)
        dumped = await dump_collection(db, "public_games", db_dir, compress=False, spec=view)
        games = await dump_collection(db, "games", db_dir, compress=False)
    finally:
        await client.close()
    assert (dumped.kind, dumped.documents) == ("view", 0)
    assert (games.kind, games.documents) == ("collection", 1)
    assert not (db_dir / "public_games.bson").exists()
    meta = json_util.loads((db_dir / "public_games.metadata.json").read_text())
    assert meta["type"] == "view"
    assert meta["options"] == VIEW_INFO["options"]
    assert meta["indexes"] == []
    assert json_util.loads((db_dir / "games.metadata.json").read_text())["type"] == "collection"
    read = {c.name: c for c in read_dump(tmp_path / "dump")}
    assert read["public_games"].kind == "view"


# --- verify and sync: the stand-in reports no options, so the listings are those of a server
# that does (patched in); documents and indexes are still read from the stand-in.


def _listing_with(extra: dict[str, dict[str, CollectionSpec]]) -> Any:
    real = collection_specs

    async def listing(db: RawDatabase) -> dict[str, CollectionSpec]:
        specs = await real(db)
        specs.update(extra.get(db.name, {}))
        return specs

    return listing


async def _seed_twins(client: Client, src: str, dst: str) -> None:
    for name in (src, dst):
        await client[name].users.insert_many(
            [{"_id": f"u{i}", "email": f"{i}@x"} for i in range(5)]
        )
        await client[name].users.create_index("email", unique=True)


def test_verify_names_a_collection_option_and_an_index_option_that_differ(
    mongo_uri: str,
    mongo_client: Client,
    fresh_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    src, dst = fresh_name + "_a", fresh_name + "_b"
    asyncio.run(_seed_twins_sync(mongo_uri, src, dst))
    validated = CollectionSpec("users", "collection", VALIDATED_INFO["options"])  # type: ignore[arg-type]
    monkeypatch.setattr(
        verify,
        "collection_specs",
        _listing_with(
            {
                src: {"users": validated, "public_games": CollectionSpec.from_info(VIEW_INFO)},
                dst: {
                    "users": CollectionSpec("users"),
                    "public_games": CollectionSpec.from_info(VIEW_INFO),
                },
            }
        ),
    )
    real_index_specs = verify.index_specs

    async def index_listing(coll: Any) -> list[dict[str, Any]]:
        specs = await real_index_specs(coll)
        if coll.database.name == src:  # the source's unique index is also partial
            for spec in specs:
                if spec["key"] == {"email": 1}:
                    spec["partialFilterExpression"] = {"deleted": False}
        return specs

    monkeypatch.setattr(verify, "index_specs", index_listing)
    out = tmp_path / "verify.json"
    result = runner.invoke(
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
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert 'users: option validator: source {"$jsonSchema"' in text
    assert 'users: option validationLevel: source "strict", target absent' in text
    index_line = "users: index {email: 1} unique: option partialFilterExpression:"
    assert f'{index_line} source {{"deleted": false}}, target absent' in text
    data = json.loads(out.read_text())
    by_name = {c["name"]: c for c in data["collections"]}
    assert by_name["users"]["identical"] is False
    assert by_name["users"]["different"]["count"] == 0  # the documents are the same
    assert len(by_name["users"]["option_differences"]) == 4
    assert by_name["public_games"]["kind"] == "view"
    assert by_name["public_games"]["identical"] is True  # same definition on both sides
    asyncio.run(_drop(mongo_uri, src, dst))


async def _seed_twins_sync(uri: str, src: str, dst: str) -> None:
    from paletai.db.client import make_client

    client = make_client(uri)
    try:
        await _seed_twins(client, src, dst)
    finally:
        await client.close()


async def _drop(uri: str, *names: str) -> None:
    from paletai.db.client import make_client

    client = make_client(uri)
    try:
        for name in names:
            await client.drop_database(name)
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            CollectionSpec.from_info(TIMESERIES_INFO),
            "db sync cannot follow the time-series collection(s) metrics",
        ),
        (CollectionSpec.from_info(VIEW_INFO), "the target cannot hold view"),
    ],
)
def test_sync_refuses_time_series_and_creates_views_or_says_why_not(
    mongo_uri: str,
    second_uri: str,
    fresh_name: str,
    monkeypatch: pytest.MonkeyPatch,
    spec: CollectionSpec,
    message: str,
) -> None:
    import asyncio

    asyncio.run(_seed_twins_sync(mongo_uri, fresh_name, fresh_name + "_unused"))
    monkeypatch.setattr(kinds, "collection_specs", _listing_with({fresh_name: {spec.name: spec}}))
    result = runner.invoke(
        db_app,
        [
            "sync",
            "--source",
            with_db(mongo_uri, fresh_name),
            "--target",
            with_db(second_uri, fresh_name),
            "--until-synced",
            "--timeout",
            "30",
        ],
    )
    assert result.exit_code == 1, result.output
    assert message in " ".join(result.output.split())
    asyncio.run(_drop(mongo_uri, fresh_name + "_unused"))


# --- archives: a view goes in the prelude; a time-series is refused by name ---------------------


def test_an_archive_carries_a_view_and_restore_names_it_when_the_target_cannot(
    mongo_uri: str,
    second_uri: str,
    fresh_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    from paletai.ops.db import archive_io

    asyncio.run(_seed_twins_sync(mongo_uri, fresh_name, fresh_name + "_unused"))
    view = CollectionSpec.from_info(VIEW_INFO)
    monkeypatch.setattr(
        archive_io, "collection_specs", _listing_with({fresh_name: {view.name: view}})
    )
    archive = tmp_path / "dump.archive"
    src = with_db(mongo_uri, fresh_name)
    made = runner.invoke(db_app, ["backup", "--uri", src, "--archive", str(archive)])
    assert made.exit_code == 0, made.output
    out = tmp_path / "restore.json"
    dst = with_db(second_uri, fresh_name)
    args = ["restore", "--uri", dst, "--archive", str(archive), "--json", str(out)]
    result = runner.invoke(db_app, args)
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert f"failed {fresh_name}.public_games: the target cannot hold view" in text
    assert f"{fresh_name}.users -> {fresh_name}.users: 5 inserted" in text
    by_name = {c["namespace"]: c for c in json.loads(out.read_text())["collections"]}
    assert by_name[f"{fresh_name}.public_games"]["kind"] == "view"
    assert by_name[f"{fresh_name}.users"]["problem"] is None
    asyncio.run(_drop(mongo_uri, fresh_name + "_unused"))


def test_an_archive_backup_refuses_a_time_series_collection_by_name(
    mongo_uri: str, fresh_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from paletai.ops.db import archive_io

    asyncio.run(_seed_twins_sync(mongo_uri, fresh_name, fresh_name + "_unused"))
    series = CollectionSpec.from_info(TIMESERIES_INFO)
    monkeypatch.setattr(
        archive_io, "collection_specs", _listing_with({fresh_name: {series.name: series}})
    )
    args = ["backup", "--uri", with_db(mongo_uri, fresh_name), "--archive", str(tmp_path / "a")]
    result = runner.invoke(db_app, args)
    assert result.exit_code == 1, result.output
    assert "--archive cannot hold the time-series collection(s) metrics" in " ".join(
        result.output.split()
    )
    asyncio.run(_drop(mongo_uri, fresh_name + "_unused"))


def test_a_blob_backup_names_a_view_it_cannot_hold(
    mongo_uri: str,
    fresh_name: str,
    azurite: str,
    container_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    from paletai.ops.db import blob

    asyncio.run(_seed_twins_sync(mongo_uri, fresh_name, fresh_name + "_unused"))
    view = CollectionSpec.from_info(VIEW_INFO)
    monkeypatch.setattr(blob, "collection_specs", _listing_with({fresh_name: {view.name: view}}))
    source = with_db(mongo_uri, fresh_name)
    args = ["backup", "--uri", source, "--to-blob", azurite, "--container", container_name]
    result = runner.invoke(db_app, args)
    assert result.exit_code == 1, result.output
    assert "--to-blob cannot hold view 'public_games'" in " ".join(result.output.split())
    asyncio.run(_drop(mongo_uri, fresh_name + "_unused"))

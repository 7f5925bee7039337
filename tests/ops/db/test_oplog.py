"""A dump's oplog: refused without --oplog-replay, replayed in order and idempotently with it;
and `db backup --consistent` under a live writer restoring to one instant."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
from pathlib import Path
from typing import Any

import bson
import pytest
from bson import ObjectId, Timestamp
from typer.testing import CliRunner

from paletai.db.client import Client
from paletai.ops.db.archive_io import backup_to_archive, restore_from_archive
from paletai.ops.db.backup import backup
from paletai.ops.db.cli import db_app
from paletai.ops.db.common import RAW_CODEC, connect
from paletai.ops.db.dumpfmt import read_raw_documents
from paletai.ops.db.oplog import (
    CHANGES_FILE,
    OPLOG_FILE,
    ChangeRecorder,
    OplogApplier,
    apply_diff,
    iter_entries,
    replay,
)
from paletai.ops.db.restore import restore
from paletai.ops.db.verify import verify
from paletai.ops.errors import OpsError
from tests.ops.conftest import game_doc, wait_until, with_db
from tests.ops.db.writer import Writer

runner = CliRunner()


def test_apply_diff_follows_the_v2_diff_form() -> None:
    doc: dict[str, Any] = {
        "_id": 1,
        "a": 1,
        "gone": True,
        "sub": {"x": 1, "y": 2},
        "arr": [1, 2, 3, 4],
        "objs": [{"k": 1}, {"k": 2}],
    }
    diff = {
        "d": {"gone": False},
        "u": {"a": 2},
        "i": {"new": "n"},
        "ssub": {"u": {"x": 10}, "d": {"y": False}, "i": {"z": 3}},
        "sarr": {"a": True, "l": 2, "u3": 9},
        "sobjs": {"a": True, "s1": {"u": {"k": 20}}},
        "smissing": {"i": {"q": 1}},
    }
    out = apply_diff(doc, diff)
    assert out == {
        "_id": 1,
        "a": 2,
        "sub": {"x": 10, "z": 3},
        "arr": [1, 2, None, 9],
        "objs": [{"k": 1}, {"k": 20}],
        "new": "n",
        "missing": {"q": 1},
    }
    assert list(out)[-2:] == ["new", "missing"]


def _oplog(ns: str, ids: list[ObjectId]) -> list[dict[str, Any]]:
    """Entries as a real oplog holds them (mongodump --oplog), one of each kind we replay."""
    a, b, c = ids
    db = ns.partition(".")[0]
    entries: list[dict[str, Any]] = [
        {"op": "n", "ns": "", "o": {"msg": "periodic noop"}},
        {"op": "i", "ns": ns, "o": {"_id": a, "n": 1, "tags": ["x", "y", "z"], "sub": {"k": 1}}},
        {"op": "i", "ns": ns, "o": {"_id": b, "n": 2}},
        {"op": "i", "ns": ns, "o": {"_id": c, "n": 3}},
        {"op": "u", "ns": ns, "o2": {"_id": a}, "o": {"$v": 2, "diff": {"u": {"n": 10}}}},
        {
            "op": "u",
            "ns": ns,
            "o2": {"_id": a},
            "o": {"$v": 2, "diff": {"stags": {"a": True, "l": 2}, "ssub": {"i": {"j": 2}}}},
        },
        {"op": "u", "ns": ns, "o2": {"_id": b}, "o": {"$v": 1, "$set": {"s": 1}}},
        {"op": "u", "ns": ns, "o2": {"_id": b}, "o": {"$unset": {"n": True}}},
        {"op": "u", "ns": ns, "o2": {"_id": c}, "o": {"_id": c, "replaced": True}},
        {"op": "d", "ns": ns, "o": {"_id": b}},
        {"op": "i", "ns": "admin.system.users", "o": {"_id": "admin.x", "user": "x"}},
        {"op": "c", "ns": f"{db}.$cmd", "o": {"create": "made"}},
        {  # a transaction's commit: applyOps on admin.$cmd, its entries in our database
            "op": "c",
            "ns": "admin.$cmd",
            "o": {"applyOps": [{"op": "i", "ns": f"{db}.made", "o": {"_id": "m1", "v": 1}}]},
            "txnNumber": 1,
        },
        {
            "op": "c",
            "ns": f"{db}.$cmd",
            "o": {"createIndexes": "made", "key": {"v": 1}, "name": "v_1"},
        },
    ]
    for i, entry in enumerate(entries):
        entry["ts"] = Timestamp(1_700_000_000, i + 1)
        entry.setdefault("v", 2)
    return entries


def _write_dump_with_oplog(root: Path, db: str, entries: list[dict[str, Any]]) -> None:
    (root / db).mkdir(parents=True)
    (root / db / "games.bson").write_bytes(bson.encode({"_id": "old", "n": 0}))
    (root / db / "games.metadata.json").write_text(
        '{"options":{},"indexes":[],"collectionName":"games","type":"collection"}'
    )
    (root / OPLOG_FILE).write_bytes(b"".join(bson.encode(e) for e in entries))


def _expected(ids: list[ObjectId]) -> dict[Any, Any]:
    a, _, c = ids
    return {
        "old": {"_id": "old", "n": 0},
        a: {"_id": a, "n": 10, "tags": ["x", "y"], "sub": {"k": 1, "j": 2}},
        c: {"_id": c, "replaced": True},
    }


async def test_a_dump_with_an_oplog_is_refused_without_replay_and_applied_with_it(
    mongo_client: Client, mongo_uri: str, fresh_name: str, tmp_path: Path
) -> None:
    ids = [ObjectId() for _ in range(3)]
    entries = _oplog(f"{fresh_name}.games", ids)
    _write_dump_with_oplog(tmp_path / "dump", fresh_name, entries)

    args = ["restore", "--uri", mongo_uri, "--dir", str(tmp_path / "dump")]
    refused = await asyncio.to_thread(runner.invoke, db_app, args)
    assert refused.exit_code == 2
    lines = [line for line in refused.output.splitlines() if line.strip()]
    assert len(lines) == 1, refused.output
    assert "holds oplog.bson" in lines[0]
    assert "add --oplog-replay" in lines[0]
    assert await mongo_client[fresh_name].games.estimated_document_count() == 0  # nothing done

    result = await restore(mongo_uri, tmp_path / "dump", oplog_replay=True)
    assert result.oplog is not None
    assert result.oplog.entries == len(entries)
    assert result.oplog.skipped == 2  # the no-op and the admin database
    db = mongo_client[fresh_name]
    docs = {d["_id"]: d async for d in db.games.find()}
    assert docs == _expected(ids)
    assert [d async for d in db.made.find()] == [{"_id": "m1", "v": 1}]

    # Idempotent: the same entries again (as after an interrupted replay) change nothing.
    async_client = await connect(mongo_uri, role="target")
    try:
        again = await replay(
            OplogApplier(async_client, lambda ns: ns),
            iter_entries(bson.encode(e) for e in entries),
            "again",
        )
    finally:
        await async_client.close()
    assert again.applied == len(entries) - 2
    assert {d["_id"]: d async for d in db.games.find()} == _expected(ids)


async def test_a_gzip_oplog_keeps_mongodumps_name(
    mongo_client: Client, mongo_uri: str, fresh_name: str, tmp_path: Path
) -> None:
    """`mongodump --gzip --oplog` writes gzip content under the plain name `oplog.bson` (the
    only name stock mongorestore looks for): read so, and written so by --consistent --gzip."""
    ids = [ObjectId() for _ in range(3)]
    _write_dump_with_oplog(tmp_path / "dump", fresh_name, _oplog(f"{fresh_name}.games", ids))
    oplog = tmp_path / "dump" / OPLOG_FILE
    oplog.write_bytes(gzip.compress(oplog.read_bytes()))
    result = await restore(mongo_uri, tmp_path / "dump", oplog_replay=True)
    assert result.oplog is not None
    assert {d["_id"]: d async for d in mongo_client[fresh_name].games.find()} == _expected(ids)

    backed = await backup(
        with_db(mongo_uri, fresh_name), tmp_path / "ours", compress=True, consistent=True
    )
    assert backed.consistent is not None
    written = tmp_path / "ours" / backed.consistent.file
    assert not written.name.endswith(".gz")
    assert written.read_bytes()[:2] == b"\x1f\x8b"


async def test_oplog_replay_without_an_oplog_is_refused(
    mongo_uri: str, fresh_name: str, tmp_path: Path
) -> None:
    _write_dump_with_oplog(tmp_path / "dump", fresh_name, [])
    (tmp_path / "dump" / OPLOG_FILE).unlink()
    with pytest.raises(OpsError, match="holds no oplog.bson .* leave out --oplog-replay"):
        await restore(mongo_uri, tmp_path / "dump", oplog_replay=True)


async def test_an_unsupported_oplog_command_fails_loudly(
    mongo_uri: str, fresh_name: str, tmp_path: Path
) -> None:
    entries = [
        {"ts": Timestamp(1, 1), "op": "c", "ns": f"{fresh_name}.$cmd", "o": {"collMod": "games"}}
    ]
    _write_dump_with_oplog(tmp_path / "dump", fresh_name, entries)
    with pytest.raises(OpsError, match="'collMod' command .* stock mongorestore --oplogReplay"):
        await restore(mongo_uri, tmp_path / "dump", oplog_replay=True)


async def test_recorder_converges_past_writes_made_while_it_rereads(
    mongo_client: Client, mongo_uri: str, fresh_name: str
) -> None:
    """Changes keep coming while the end is sought: the capture ends only after a pass that
    found nothing new, and holds the documents as they are at that point."""
    games = mongo_client[fresh_name].games
    docs = [game_doc(i, size=50) for i in range(20)]
    await games.insert_many(docs)
    client = await connect(with_db(mongo_uri, fresh_name), role="source")
    try:
        recorder = ChangeRecorder(
            client.get_database(fresh_name, codec_options=RAW_CODEC), ["games"]
        )
        await recorder.open()
        await games.update_one({"_id": docs[0]["_id"]}, {"$set": {"title": "during"}})
        await games.delete_one({"_id": docs[1]["_id"]})

        async def keep_writing(round_no: int) -> None:
            if round_no <= 3:
                await games.update_one({"_id": docs[2]["_id"]}, {"$set": {"title": f"r{round_no}"}})

        capture = await recorder.finish(between_rounds=keep_writing)
    finally:
        await client.close()
    assert capture.rounds == 4  # three passes found new changes, the fourth found none
    entries = [bson.decode(raw) for raw in capture.entries]
    by_id = {e["o2"]["_id"] if e["op"] == "u" else e["o"]["_id"]: e for e in entries}
    assert by_id[docs[0]["_id"]]["o"]["title"] == "during"
    assert by_id[docs[1]["_id"]]["op"] == "d"
    assert by_id[docs[2]["_id"]]["o"]["title"] == "r3"
    assert len(entries) == 3


async def _snapshot(client: Client, name: str) -> dict[str, dict[bytes, bytes]]:
    db = client.get_database(name, codec_options=RAW_CODEC)
    out = {}
    for coll in await db.list_collection_names():
        out[coll] = {bson.encode({"_id": d["_id"]}): bytes(d.raw) async for d in db[coll].find()}
    return out


@pytest.mark.parametrize("mode", ["directory", "archive"])
async def test_consistent_backup_under_a_writer_restores_to_one_instant(
    mongo_client: Client,
    second_client: Client,
    mongo_uri: str,
    second_uri: str,
    fresh_name: str,
    tmp_path: Path,
    mode: str,
) -> None:
    source = mongo_client[fresh_name]
    await source.games.insert_many([game_doc(i, size=300) for i in range(1500)])
    await source.users.insert_one({"_id": "user-0", "seen": 0.0})
    writer = Writer(source, rate=300)
    await writer.load_ids()
    writer.start()
    await asyncio.sleep(0.3)  # writes are going on before the first read
    snapshot: dict[str, dict[bytes, bytes]] = {}

    async def stop_writer() -> None:
        # After the last collection is read: let the writer change documents already read
        # (so the dump alone is stale), stop it, and note the source as it now is. The
        # backup's end instant comes after this, so the restore must equal this snapshot.
        done = sum(writer.ops.values())
        await wait_until(lambda: sum(writer.ops.values()) >= done + 30, "writes after the dump")
        await writer.finish()
        snapshot.update(await _snapshot(mongo_client, fresh_name))

    src = with_db(mongo_uri, fresh_name)
    buffer = io.BytesIO()
    if mode == "directory":
        result = await backup(src, tmp_path / "dump", consistent=True, after_dump=stop_writer)
    else:
        result = await backup_to_archive(src, buffer, consistent=True, after_dump=stop_writer)
    assert result.consistent is not None
    assert result.consistent.events > 0
    # The stand-in gives no oplog timestamps: our own file (MongoDB's would be oplog.bson);
    # in an archive, the oplog namespace, its entries without `ts`.
    expected = CHANGES_FILE if mode == "directory" else "the archive's oplog (no ts)"
    assert result.consistent.file == expected

    target = with_db(second_uri, fresh_name)
    if mode == "directory":
        # The raw dump alone is not at one instant: the writer changed documents already read.
        dumped = {
            bson.encode({"_id": d["_id"]}): bytes(d.raw)
            for d in read_raw_documents(tmp_path / "dump" / fresh_name / "games.bson")
        }
        assert dumped != snapshot["games"]
        with pytest.raises(OpsError, match="add --oplog-replay"):
            await restore(target, tmp_path / "dump")
        restored = await restore(target, tmp_path / "dump", oplog_replay=True)
    else:
        buffer.seek(0)
        restored = await restore_from_archive(target, buffer, source="mem", oplog_replay=True)
    assert restored.ok
    assert restored.oplog is not None
    assert restored.oplog.applied == result.consistent.entries
    assert await _snapshot(second_client, fresh_name) == snapshot
    report = await verify(src, target)  # the writer is stopped: the source is still there
    assert report.identical, report.as_dict()


async def test_consistent_backup_and_replay_through_the_cli(
    mongo_client: Client, mongo_uri: str, second_uri: str, fresh_name: str, tmp_path: Path
) -> None:
    """The commands as operators run them: the summary lines and the --json results."""
    await mongo_client[fresh_name].games.insert_many([game_doc(i, size=50) for i in range(20)])
    dump = tmp_path / "dump"
    args = ["backup", "--uri", with_db(mongo_uri, fresh_name), "--out", str(dump)]
    backed = await asyncio.to_thread(
        runner.invoke, db_app, [*args, "--consistent", "--json", str(tmp_path / "b.json")]
    )
    assert backed.exit_code == 0, backed.output
    assert "restore with --oplog-replay" in backed.output
    backup_json = json.loads((tmp_path / "b.json").read_text())
    # Nothing changed: no entries, so nothing needs a timestamp: an empty oplog.bson, which stock
    # mongorestore --oplogReplay accepts as well.
    assert backup_json["consistent"]["file"] == OPLOG_FILE
    assert backup_json["consistent"]["entries"] == 0
    assert (dump / OPLOG_FILE).read_bytes() == b""

    restore_args = ["restore", "--uri", with_db(second_uri, fresh_name), "--dir", str(dump)]
    restored = await asyncio.to_thread(
        runner.invoke,
        db_app,
        [*restore_args, "--oplog-replay", "--json", str(tmp_path / "r.json")],
    )
    assert restored.exit_code == 0, restored.output
    assert "oplog replayed: 0 entries applied" in restored.output
    restore_json = json.loads((tmp_path / "r.json").read_text())
    assert restore_json["oplog"]["source"].endswith(OPLOG_FILE)
    assert sum(c["inserted"] for c in restore_json["collections"]) == 20

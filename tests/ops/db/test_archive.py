"""`db backup --archive` / `db restore --archive`: mongodump's archive format, both ways.

`make test` has no mongo-tools binary (test_stock_tools.py runs the real ones when they are
built), so here the stock side is played by an independent minimal encoder/decoder written in
this file from mongo-tools' `common/archive/spec.md` (and its Go code): magic, header, prelude,
interleaved segments, EOF with a bit-by-bit CRC-64/ECMA."""

from __future__ import annotations

import asyncio
import gzip
import io
import os
import re
import struct
import subprocess
from pathlib import Path
from typing import Any

import bson
import pytest
from bson import Int64, ObjectId, json_util
from typer.testing import CliRunner

from paletai.db.client import Client
from paletai.ops.db.archive import _crc64_python, crc64_ecma
from paletai.ops.db.archive_io import backup_to_archive, restore_from_archive
from paletai.ops.db.cli import db_app
from paletai.ops.db.common import RAW_CODEC, index_shape
from paletai.ops.db.namespaces import NamespaceMapper
from paletai.ops.db.verify import verify
from paletai.ops.errors import OpsError
from tests.ops.conftest import game_doc, rich_docs, with_db
from tests.process_helpers import paletai_db_child

runner = CliRunner()


# --- an independent reference: the spec, written out plainly ---------------------------------


def _ref_table() -> list[int]:
    table = []
    for value in range(256):
        for _ in range(8):
            value = (value >> 1) ^ 0xC96C5795D7870F42 if value & 1 else value >> 1
        table.append(value)
    return table


REF_TABLE = _ref_table()


def ref_crc64(data: bytes) -> int:
    """CRC-64/ECMA-182 as Go's hash/crc64 with the ECMA table computes it (reflected, init
    and xorout all ones), written here from the definition, apart from the code under test."""
    crc = (1 << 64) - 1
    for byte in data:
        crc = REF_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ ((1 << 64) - 1)


TERM = b"\xff\xff\xff\xff"


def ref_doc(pairs: list[tuple[str, Any]]) -> bytes:
    return bson.encode(dict(pairs))


def ref_ns_header(db: str, coll: str, eof: bool, crc: int) -> bytes:
    # Go's NamespaceHeader.MarshalBSON: db, collection, EOF, then CRC as int64 (the uint64 bits).
    body = (
        b"\x02db\x00"
        + struct.pack("<i", len(db) + 1)
        + db.encode()
        + b"\x00"
        + b"\x02collection\x00"
        + struct.pack("<i", len(coll) + 1)
        + coll.encode()
        + b"\x00"
        + b"\x08EOF\x00"
        + (b"\x01" if eof else b"\x00")
        + b"\x12CRC\x00"
        + struct.pack("<Q", crc)
    )
    return struct.pack("<i", len(body) + 5) + body + b"\x00"


def stock_archive(db: str, collections: dict[str, tuple[list[bytes], str]]) -> bytes:
    """An archive as mongodump 100.x writes one: two collections interleaved in segments."""
    out = struct.pack("<I", 0x8199E26D)
    out += ref_doc(
        [
            ("concurrent_collections", 4),
            ("version", "0.1"),
            ("server_version", "7.0.5"),
            ("tool_version", "100.9.4"),
        ]
    )
    for name, (_, metadata) in collections.items():
        out += ref_doc(
            [
                ("db", db),
                ("collection", name),
                ("metadata", metadata),
                ("size", 0),
                ("type", "collection"),
            ]
        )
    out += TERM
    # Segments: 2 documents at a time, alternating between the collections.
    cursors = dict.fromkeys(collections, 0)
    while any(cursors[n] < len(docs) for n, (docs, _) in collections.items()):
        for name, (docs, _) in collections.items():
            part = docs[cursors[name] : cursors[name] + 2]
            if part:
                out += ref_ns_header(db, name, False, 0) + b"".join(part) + TERM
                cursors[name] += len(part)
    for name, (docs, _) in collections.items():
        out += ref_ns_header(db, name, True, ref_crc64(b"".join(docs))) + TERM
    return out


def ref_parse(data: bytes) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, list[bytes]]]:
    """Read an archive by the spec: (header, prelude entries, documents by namespace); checks
    the terminators and every EOF CRC."""
    assert struct.unpack("<I", data[:4])[0] == 0x8199E26D
    pos = 4

    def take() -> bytes | None:
        nonlocal pos
        if data[pos : pos + 4] == TERM:
            pos += 4
            return None
        size = struct.unpack("<i", data[pos : pos + 4])[0]
        raw = data[pos : pos + size]
        pos += size
        return raw

    first = take()
    assert first is not None
    header = bson.decode(first)
    prelude = []
    while (raw := take()) is not None:
        prelude.append(bson.decode(raw))
    docs: dict[str, list[bytes]] = {}
    ended: set[str] = set()
    while pos < len(data):
        head = take()
        assert head is not None, "a block must start with a namespace header"
        # The CRC is an int64 element (0x12) right before the header's end.
        assert head[-14:-9] == b"\x12CRC\x00"
        ns = bson.decode(head)
        key = f"{ns['db']}.{ns['collection']}"
        if ns["EOF"]:
            crc = struct.unpack("<Q", head[-9:-1])[0]
            assert crc == ref_crc64(b"".join(docs.get(key, []))), key
            ended.add(key)
            assert take() is None
            continue
        while (raw := take()) is not None:
            docs.setdefault(key, []).append(raw)
    assert ended == {f"{p['db']}.{p['collection']}" for p in prelude}
    return header, prelude, docs


# --- tests ------------------------------------------------------------------------------------


def test_crc64_matches_go_ecma_and_the_bitwise_reference() -> None:
    # Go's hash/crc64 golden values for the ECMA table, and CRC-64/XZ's check value.
    assert crc64_ecma(b"a") == 0x330284772E652B05
    assert crc64_ecma(b"123456789") == 0x995DC9BBDF1939FA
    blob = os.urandom(5000)
    assert crc64_ecma(blob) == _crc64_python(blob) == ref_crc64(blob)
    # Continuing a CRC over pieces gives the CRC of the whole, as the writer relies on.
    assert crc64_ecma(blob[3000:], crc64_ecma(blob[:3000])) == ref_crc64(blob)


async def _seed(client: Client, name: str, *, games: int = 400, rich: bool = True) -> None:
    db = client[name]
    await db.games.insert_many([game_doc(i) for i in range(games)])
    await db.games.create_index([("created_at", -1), ("likes_count", -1)])
    await db.users.insert_many(rich_docs() if rich else [{"_id": "a", "text": "x"}])
    await db.users.create_index("text", unique=True)
    await db.create_collection("empty")


@pytest.mark.parametrize("compress", [False, True])
async def test_archive_round_trip_in_the_stock_layout(
    mongo_client: Client,
    second_client: Client,
    mongo_uri: str,
    second_uri: str,
    fresh_name: str,
    tmp_path: Path,
    compress: bool,
) -> None:
    await _seed(mongo_client, fresh_name)
    path = tmp_path / "db.archive"
    with path.open("wb") as raw_out:
        out = gzip.GzipFile(fileobj=raw_out, mode="wb") if compress else raw_out
        result = await backup_to_archive(with_db(mongo_uri, fresh_name), out, archive_name="f")
        out.close()
    assert result.documents == 403
    data = path.read_bytes()
    if compress:
        assert data[:2] == b"\x1f\x8b"  # the whole stream, as mongodump --archive --gzip
        data = gzip.decompress(data)

    header, prelude, docs = ref_parse(data)
    assert header["version"] == "0.1"
    assert isinstance(header["concurrent_collections"], int)
    assert {p["collection"] for p in prelude} == {"games", "users", "empty"}
    meta = json_util.loads(next(p for p in prelude if p["collection"] == "users")["metadata"])
    assert meta["collectionName"] == "users"
    assert any(ix.get("unique") for ix in meta["indexes"])
    # The archive holds exactly the bytes the server returns.
    raw_users = mongo_client.get_database(fresh_name, codec_options=RAW_CODEC).users
    served = sorted([bytes(d.raw) async for d in raw_users.find()])
    assert sorted(docs[f"{fresh_name}.users"]) == served
    assert len(docs[f"{fresh_name}.games"]) == 400
    assert f"{fresh_name}.empty" not in docs  # an empty segment, then its EOF

    with path.open("rb") as stream:
        source = gzip.GzipFile(fileobj=stream, mode="rb") if compress else stream
        restored = await restore_from_archive(
            with_db(second_uri, fresh_name), source, source=str(path)
        )
    assert restored.ok
    assert restored.total("inserted") == 403
    report = await verify(with_db(mongo_uri, fresh_name), with_db(second_uri, fresh_name))
    assert report.identical, report.as_dict()
    shapes = {
        index_shape(ix)
        for ix in await (await second_client[fresh_name].users.list_indexes()).to_list()
    }
    assert any(s.unique and s.key == (("text", "1"),) for s in shapes)


async def test_restore_reads_a_stock_archive_with_interleaved_segments(
    mongo_client: Client, mongo_uri: str, fresh_name: str
) -> None:
    games = [bson.encode({"_id": ObjectId(), "n": i, "big": Int64(2**40 + i)}) for i in range(7)]
    users = [bson.encode({"_id": f"u{i}", "email": f"u{i}@example.com"}) for i in range(5)]
    users_meta = json_util.dumps(
        {
            "options": {},
            "indexes": [
                {"v": 2, "key": {"_id": 1}, "name": "_id_"},
                {"v": 2, "key": {"email": 1}, "name": "email_1", "unique": True},
            ],
            "uuid": "9f1c3a6a2f3c4b46a1d5e0c2a3b4c5d6",
            "collectionName": "users",
            "type": "collection",
        },
        json_options=json_util.CANONICAL_JSON_OPTIONS,
    )
    games_meta = '{"options":{},"indexes":[],"collectionName":"games","type":"collection"}'
    # mongodump --dumpDbUsersAndRoles adds the database's users: not a collection to create.
    auth = [bson.encode({"_id": f"{fresh_name}.app", "user": "app", "db": fresh_name})]
    data = stock_archive(
        fresh_name,
        {
            "games": (games, games_meta),
            "users": (users, users_meta),
            "$admin.system.users": (auth, ""),
        },
    )
    result = await restore_from_archive(mongo_uri, io.BytesIO(data), source="stock")
    assert result.ok
    assert {c.namespace: c.inserted for c in result.collections} == {
        f"{fresh_name}.games": 7,
        f"{fresh_name}.users": 5,
    }
    db = mongo_client.get_database(fresh_name, codec_options=RAW_CODEC)
    assert sorted([bytes(d.raw) async for d in db.games.find()]) == sorted(games)
    shapes = {index_shape(ix) for ix in await (await db.users.list_indexes()).to_list()}
    assert any(s.unique and s.key == (("email", "1"),) for s in shapes)

    # --oplog-replay on an archive without an oplog: refused, as mongorestore does.
    with pytest.raises(OpsError, match="holds no oplog .* leave out --oplog-replay"):
        await restore_from_archive(mongo_uri, io.BytesIO(data), source="s", oplog_replay=True)

    # Renamed on the way in, as with a directory dump.
    mapper = NamespaceMapper(ns_from=[f"{fresh_name}.*"], ns_to=[f"{fresh_name}x.*"])
    again = await restore_from_archive(mongo_uri, io.BytesIO(data), source="s", mapper=mapper)
    assert again.total("inserted") == 12
    await mongo_client.drop_database(f"{fresh_name}x")


def _corrupt(data: bytes, how: str) -> bytes:
    if how == "crc":  # one byte of a document changed: its namespace's CRC no longer matches
        at = data.index(b"u3@example.com")
        return data[:at] + b"X" + data[at + 1 :]
    if how == "truncated":
        return data[: len(data) - 30]
    if how == "not-an-archive":
        return bson.encode({"_id": 1})
    if how == "gzip":
        return gzip.compress(data)
    raise AssertionError(how)


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("crc", "corrupt archive at byte .*: CRC mismatch for .*users"),
        ("truncated", "truncated archive"),
        ("not-an-archive", "is not a mongodump archive .*use --dir"),
        ("gzip", "is gzip-compressed: add --gzip"),
    ],
)
def test_restore_refuses_a_corrupt_archive_with_one_line(
    mongo_uri: str, fresh_name: str, tmp_path: Path, how: str, message: str
) -> None:
    users = [bson.encode({"_id": f"u{i}", "email": f"u{i}@example.com"}) for i in range(5)]
    meta = '{"options":{},"indexes":[],"collectionName":"users","type":"collection"}'
    path = tmp_path / "bad.archive"
    path.write_bytes(_corrupt(stock_archive(fresh_name, {"users": (users, meta)}), how))
    result = runner.invoke(db_app, ["restore", "--uri", mongo_uri, "--archive", str(path)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error:")
    assert re.search(message, lines[0]), lines[0]


def test_options_are_checked_before_anything_runs(mongo_uri: str, tmp_path: Path) -> None:
    both = runner.invoke(
        db_app, ["backup", "--uri", mongo_uri, "--out", str(tmp_path), "--archive", "x"]
    )
    assert both.exit_code == 2
    assert "give one of --out DIR, --archive FILE|-" in both.output
    neither = runner.invoke(db_app, ["restore", "--uri", mongo_uri])
    assert neither.exit_code == 2
    assert "give one of --dir DUMP, --archive FILE|-" in neither.output
    gz = runner.invoke(db_app, ["restore", "--uri", mongo_uri, "--dir", str(tmp_path), "--gzip"])
    assert gz.exit_code == 2
    assert "--gzip goes with --archive" in gz.output
    missing = runner.invoke(
        db_app, ["restore", "--uri", mongo_uri, "--archive", str(tmp_path / "nope")]
    )
    assert missing.exit_code == 2
    assert "cannot read --archive" in missing.output
    folder = runner.invoke(db_app, ["backup", "--uri", mongo_uri, "--archive", str(tmp_path)])
    assert folder.exit_code == 2
    assert "is a directory" in folder.output


def _pipe(src: str, dst: str, cwd: Path) -> tuple[int, str, int, str]:
    """`paletai db backup --archive - --gzip | paletai db restore --archive - --gzip`:
    (backup's exit code and stderr, restore's exit code and stderr)."""
    base, env = paletai_db_child()
    with (cwd / "backup.err").open("wb") as backup_err:
        backup = subprocess.Popen(
            [*base, "backup", "--uri", src, "--archive", "-", "--gzip"],
            stdout=subprocess.PIPE,
            stderr=backup_err,
            env=env,
        )
        assert backup.stdout is not None
        restore = subprocess.run(
            [*base, "restore", "--uri", dst, "--archive", "-", "--gzip"],
            stdin=backup.stdout,
            capture_output=True,
            env=env,
            timeout=120,
            check=False,
        )
        backup.stdout.close()
        code = backup.wait(60)
    return code, (cwd / "backup.err").read_text(), restore.returncode, restore.stderr.decode()


async def test_backup_pipes_into_restore_through_stdout_and_stdin(
    mongo_client: Client, mongo_uri: str, second_uri: str, fresh_name: str, tmp_path: Path
) -> None:
    """Two real processes: stdout carries only the archive, the progress goes to stderr."""
    await _seed(mongo_client, fresh_name, games=200, rich=False)
    src, dst = with_db(mongo_uri, fresh_name), with_db(second_uri, fresh_name)
    code, backup_err, restore_code, restore_err = await asyncio.to_thread(_pipe, src, dst, tmp_path)
    assert code == 0, backup_err
    assert restore_code == 0, restore_err
    assert "backed up" in backup_err
    assert "restored 201 documents" in restore_err
    report = await verify(src, dst)
    assert report.identical, report.as_dict()


def test_empty_stdin_is_not_an_archive(mongo_uri: str) -> None:
    result = runner.invoke(db_app, ["restore", "--uri", mongo_uri, "--archive", "-"], input=b"")
    assert result.exit_code == 2
    assert "not a mongodump archive" in result.output


def test_reader_names_unknown_namespace(tmp_path: Path) -> None:
    from paletai.ops.db.archive import ArchiveReader

    users = [bson.encode({"_id": 1})]
    data = stock_archive("d", {"users": (users, "")})
    data = data.replace(b"users\x00\x08EOF\x00\x00", b"usurp\x00\x08EOF\x00\x00", 1)
    reader = ArchiveReader(io.BytesIO(data), "x")
    reader.read_prelude()
    with pytest.raises(OpsError, match="d.usurp, which the prelude does not list"):
        list(reader.documents())

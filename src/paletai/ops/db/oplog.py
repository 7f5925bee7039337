"""Oplog entries: replaying a dump's `oplog.bson`, and capturing one for `db backup --consistent`.

Replay (`db restore --oplog-replay`) applies the entries in order, idempotently, after the
collections are restored, as `mongorestore --oplogReplay` does: `i` (insert, as an upsert), `u`
(a replacement, `$set`/`$unset`, or the `$v: 2` `diff` form), `d`, and the commands a dump's
window can hold (`create`, `drop`, index builds, `applyOps`); anything else fails loudly.

Capture (`db backup --consistent`): a change stream per collection is opened before the first
read (collection-level streams work on every server; the embedded stand-in has no database-level
ones). Events are hints that `_id`s changed; after the dump those documents are read again from
the source, and the loop repeats until a pass over every stream finds no new event after the
re-reads. At that instant (the end of the backup) every document read last is unchanged, so the
dump plus the recorded final states equals the source at one instant. The states are written as
oplog entries (`u` replacement with `o2: {_id}`, `d`), which stock `mongorestore --oplogReplay`
applies with `applyOps` (upserting). When the server gives each event a `clusterTime` timestamp
(MongoDB does) they go to `oplog.bson`; otherwise (the stand-in sends a date) to our own
`paletai-changes.bson` with the same entries but no `ts`, which only our restore replays.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gzip
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import bson
from bson import CodecOptions, Timestamp
from bson.binary import UuidRepresentation
from bson.raw_bson import RawBSONDocument
from pymongo.asynchronous.change_stream import AsyncCollectionChangeStream
from pymongo.errors import CollectionInvalid, OperationFailure, PyMongoError

from paletai.ops.db.common import (
    RAW_CODEC,
    RawClient,
    RawDatabase,
    create_indexes,
    id_bytes,
    leading_id,
)
from paletai.ops.db.dumpfmt import iter_raw_documents
from paletai.ops.db.sync import event_ids
from paletai.ops.errors import OpsError
from paletai.ops.results import ConsistentCapture

OPLOG_FILE = "oplog.bson"  # stock mongodump --oplog's name, at the dump's root
CHANGES_FILE = "paletai-changes.bson"  # ours, when the server gives no oplog timestamps
CHANGE_FILES = (OPLOG_FILE, CHANGES_FILE)
SKIPPED_DATABASES = ("admin.", "config.", "local.")
REPLAYED_COMMANDS = frozenset(
    {"create", "drop", "createIndexes", "commitIndexBuild"}
    | {"dropIndexes", "deleteIndexes", "dropIndex", "deleteIndex"}
)
REREAD_CHUNK = 1000
MAX_ROUNDS = 200
POLL_SECONDS = 0.05
AWAIT_MS = 20

# Decoded documents keep their BSON types (Int64 stays Int64, binary subtypes, UUIDs).
_DOC_CODEC: CodecOptions[dict[str, Any]] = CodecOptions(
    document_class=dict, tz_aware=True, uuid_representation=UuidRepresentation.STANDARD
)


# --- replay -----------------------------------------------------------------------------------


@dataclass
class OplogReplay:
    """What a replay did: entries read, applied, and skipped (no-ops, other databases)."""

    source: str
    entries: int = 0
    applied: int = 0
    skipped: int = 0
    seconds: float = 0.0


def apply_diff(doc: dict[str, Any], diff: Mapping[str, Any]) -> dict[str, Any]:
    """Apply a `$v: 2` oplog diff to a document, as the server's diff applier does."""
    for key, value in diff.items():
        if key == "d":
            for name in value:
                doc.pop(name, None)
        elif key == "u":
            for name, new in value.items():
                doc[name] = new
        elif key == "i":
            for name, new in value.items():
                doc.pop(name, None)
                doc[name] = new
        elif key.startswith("s"):
            name = key[1:]
            doc[name] = _apply_sub(doc.get(name), value)
    return doc


def _apply_sub(current: Any, diff: Mapping[str, Any]) -> Any:
    if diff.get("a") is True:
        items = list(current) if isinstance(current, list) else []
        if "l" in diff:
            size = int(diff["l"])
            items = items[:size] + [None] * max(0, size - len(items))
        for key, value in diff.items():
            if key in {"a", "l"}:
                continue
            index = int(key[1:])
            if index >= len(items):
                items.extend([None] * (index + 1 - len(items)))
            if key.startswith("u"):
                items[index] = value
            elif key.startswith("s"):
                items[index] = _apply_sub(items[index], value)
        return items
    return apply_diff(dict(current) if isinstance(current, Mapping) else {}, diff)


class OplogApplier:
    """Applies oplog entries to a client, mapping namespaces (None: the namespace is skipped)."""

    def __init__(self, client: RawClient, map_namespace: Callable[[str], str | None]) -> None:
        self.client = client
        self.map_namespace = map_namespace

    def _collection(self, namespace: str) -> Any:
        db, _, coll = namespace.partition(".")
        return self.client.get_database(db, codec_options=RAW_CODEC)[coll]

    async def apply(self, entry: Mapping[str, Any]) -> bool:
        """Apply one entry; False when it is skipped (a no-op or an excluded namespace)."""
        op = str(entry.get("op", ""))
        ns = str(entry.get("ns", ""))
        if op == "n":
            return False
        # A transaction's commit is an applyOps on admin.$cmd: its entries name their own
        # namespaces, so it is unwrapped before the admin/config/local data is skipped.
        if op == "c" and "applyOps" in entry["o"]:
            return await self._command(ns, entry["o"])
        if ns.startswith(SKIPPED_DATABASES):
            return False
        if op == "c":
            return await self._command(ns, entry["o"])
        target = self.map_namespace(ns)
        if target is None:
            return False
        coll = self._collection(target)
        doc: Mapping[str, Any] = entry["o"]
        if op == "i":
            await coll.replace_one({"_id": doc["_id"]}, doc, upsert=True)
        elif op == "u":
            await self._update(coll, dict(entry["o2"]), doc)
        elif op == "d":
            await coll.delete_one({"_id": doc["_id"]})
        else:
            raise OpsError(f"unknown oplog operation {op!r} on {ns}")
        return True

    async def _update(self, coll: Any, query: dict[str, Any], update: Mapping[str, Any]) -> None:
        keys = list(update.keys())
        if "diff" in keys and update.get("$v") == 2:
            current = await coll.find_one(query)
            if current is None:
                return  # deleted later in the window; its delete entry follows
            doc = apply_diff(bson.decode(current.raw, _DOC_CODEC), update["diff"])
            await coll.replace_one(query, doc)
        elif keys and all(k.startswith("$") for k in keys):
            ops = {k: v for k, v in update.items() if k != "$v"}  # $v: 1 is $set / $unset
            await coll.update_one(query, ops)
        else:
            await coll.replace_one(query, update, upsert=True)

    async def _command(self, ns: str, command: Mapping[str, Any]) -> bool:
        name = next(iter(command), "")
        db = ns.partition(".")[0]
        if name == "applyOps":
            if command.get("prepare"):
                raise OpsError("a prepared transaction in the oplog is not replayed by paletai")
            applied = False
            for nested in command["applyOps"]:
                applied = await self.apply(nested) or applied
            return applied
        if name in {"startIndexBuild", "abortIndexBuild", "dbCheck", "setMultikeyMetadata"}:
            return False
        if name not in REPLAYED_COMMANDS:
            raise OpsError(
                f"the oplog holds a {name!r} command on {db}, which paletai does not replay; "
                "restore this dump with stock mongorestore --oplogReplay"
            )
        coll_name = str(command.get(name, ""))
        target = self.map_namespace(f"{db}.{coll_name}")
        if target is None:
            return False
        coll = self._collection(target)
        target_db, _, target_coll = target.partition(".")
        database = self.client.get_database(target_db, codec_options=RAW_CODEC)
        if name == "create":
            options = {k: v for k, v in command.items() if k not in {"create", "idIndex"}}
            with contextlib.suppress(CollectionInvalid):
                try:
                    await database.create_collection(target_coll, **options)
                except OperationFailure as exc:
                    if exc.code != 48:  # NamespaceExists: replayed twice
                        raise
        elif name == "drop":
            await database.drop_collection(target_coll)
        elif name == "createIndexes":
            spec = {k: v for k, v in command.items() if k != "createIndexes"}
            await create_indexes(coll, [spec])
        elif name == "commitIndexBuild":
            await create_indexes(coll, [dict(ix) for ix in command.get("indexes", [])])
        else:  # dropIndexes and its older names
            with contextlib.suppress(OperationFailure):  # already gone: replayed twice
                await coll.drop_index(command["index"])
        return True


def iter_entries(raw: Iterable[bytes]) -> Iterator[RawBSONDocument]:
    for data in raw:
        yield RawBSONDocument(data, RAW_CODEC)


def dump_change_file(dump_dir: Path, *, oplog_replay: bool) -> Path | None:
    """The dump's oplog file to replay (plain or .gz), None if it has none; OpsError when it
    has one and `oplog_replay` is off (restoring without it is not at one instant)."""
    found = [
        dump_dir / f"{name}{gz}"
        for name in CHANGE_FILES
        for gz in ("", ".gz")
        if (dump_dir / f"{name}{gz}").is_file()
    ]
    if not found:
        if oplog_replay:
            raise OpsError(
                f"--oplog-replay: {dump_dir} holds no oplog.bson (nor {CHANGES_FILE}); it was not "
                "taken with mongodump --oplog or db backup --consistent: leave out --oplog-replay"
            )
        return None
    if not oplog_replay:
        raise OpsError(
            f"{dump_dir} holds {found[0].name} (from mongodump --oplog or db backup "
            "--consistent): add --oplog-replay to apply it after the collections"
        )
    if len(found) > 1:
        raise OpsError(f"{dump_dir} holds both {found[0].name} and {found[1].name}; keep one")
    return found[0]


async def replay(
    applier: OplogApplier, entries: Iterable[RawBSONDocument], source: str
) -> OplogReplay:
    """Apply entries in order; an entry the server refuses ends the replay with one line."""
    result = OplogReplay(source=source)
    started = time.perf_counter()
    for entry in entries:
        result.entries += 1
        try:
            if await applier.apply(entry):
                result.applied += 1
            else:
                result.skipped += 1
        except PyMongoError as exc:
            where = f"{entry.get('op')} {entry.get('ns')}"
            ts = entry.get("ts")
            at = f" at {ts.time}.{ts.inc}" if isinstance(ts, Timestamp) else ""
            raise OpsError(
                f"{source}: oplog entry {result.entries} ({where}{at}) failed: "
                f"{str(exc).splitlines()[0][:200]}"
            ) from None
    result.seconds = time.perf_counter() - started
    return result


# --- capture (db backup --consistent) ---------------------------------------------------------


@dataclass
class _Final:
    """The last state read of one changed document (None: it no longer exists)."""

    id: Any
    doc: RawBSONDocument | None
    ts: Timestamp | None


@dataclass
class ChangeCapture:
    """What `--consistent` recorded: the changed documents' states at the end instant."""

    file: str  # OPLOG_FILE or CHANGES_FILE
    events: int
    rounds: int
    entries: list[bytes] = field(default_factory=list)
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    ended_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    end_cluster_time: Timestamp | None = None

    def summary(self) -> ConsistentCapture:
        cluster = self.end_cluster_time
        return ConsistentCapture(
            file=self.file,
            events=self.events,
            rounds=self.rounds,
            entries=len(self.entries),
            started_at=self.started_at.isoformat(),
            ended_at=self.ended_at.isoformat(),
            end_cluster_time=None if cluster is None else f"{cluster.time}.{cluster.inc}",
        )


def write_change_file(out_dir: Path, capture: ChangeCapture, *, compress: bool) -> Path:
    """The capture's entries at the dump's root, where mongorestore looks for oplog.bson.

    With `compress` the content is gzip but the name stays `oplog.bson`, as `mongodump --gzip
    --oplog` writes it: stock mongorestore looks for that exact name (then `--gzip` reads it)."""
    path = out_dir / capture.file
    data = b"".join(capture.entries)
    path.write_bytes(gzip.compress(data, compresslevel=6) if compress else data)
    return path


def read_change_entries(path: Path) -> Iterator[RawBSONDocument]:
    """The entries of a dump's oplog file: plain, or gzip whatever its name (mongodump --gzip
    keeps the name `oplog.bson`)."""
    with path.open("rb") as raw:
        compressed = raw.read(2) == b"\x1f\x8b"
    with gzip.open(path, "rb") if compressed else path.open("rb") as stream:
        yield from iter_raw_documents(cast(IO[bytes], stream), str(path))


class ChangeRecorder:
    """Change streams over a database's collections, from before the dump to its end instant."""

    def __init__(self, db: RawDatabase, names: list[str]) -> None:
        self.db = db
        self.names = names
        self.streams: dict[str, AsyncCollectionChangeStream[RawBSONDocument]] = {}
        self.pending: dict[str, dict[bytes, Any]] = {name: {} for name in names}
        self.last_ts: dict[str, dict[bytes, Timestamp | None]] = {name: {} for name in names}
        self.events = 0
        self.timestamps = True  # every event had a clusterTime Timestamp
        self.max_ts: Timestamp | None = None
        self.started_at = dt.datetime.now(dt.UTC)
        self._poller: asyncio.Task[None] | None = None
        self._stop_polling = asyncio.Event()

    async def open(self) -> None:
        """Open every stream: their positions are now, before the dump reads anything."""
        self.started_at = dt.datetime.now(dt.UTC)
        for name in self.names:
            # A short await: an empty getMore is how a pass learns "nothing new", and MongoDB
            # would otherwise hold each one for its default of a second.
            self.streams[name] = await self.db[name].watch(max_await_time_ms=AWAIT_MS)
        self._poller = asyncio.create_task(self._poll())

    async def _poll(self) -> None:
        # Keeps the cursors alive during a long dump and the change history read. Stopped by
        # the flag, never cancelled: a getMore cancelled in flight would lose the events the
        # server already handed out (the stream's position moved past them).
        while not self._stop_polling.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_polling.wait(), POLL_SECONDS * 10)
            if not self._stop_polling.is_set():
                await self.drain()

    async def drain(self) -> int:
        """Take every event the streams have now; the number taken."""
        taken = 0
        for name, stream in self.streams.items():
            while (event := await stream.try_next()) is not None:
                taken += 1
                kind = event.get("operationType")
                if kind in {"drop", "rename", "dropDatabase", "invalidate"}:
                    raise OpsError(
                        f"{self.db.name}.{name} was {kind} during the --consistent backup; "
                        "run the backup again"
                    )
                cluster = event.get("clusterTime")
                ts = cluster if isinstance(cluster, Timestamp) else None
                if ts is None:
                    self.timestamps = False
                elif self.max_ts is None or ts > self.max_ts:
                    self.max_ts = ts
                for value in event_ids(event):
                    key = id_bytes(value)
                    self.pending[name][key] = value
                    self.last_ts[name][key] = ts
        self.events += taken
        return taken

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, PyMongoError):
                await self._poller
            self._poller = None
        for stream in self.streams.values():
            with contextlib.suppress(PyMongoError):
                await stream.close()
        self.streams = {}

    async def _reread(self, name: str, ids: dict[bytes, Any], final: dict[bytes, _Final]) -> None:
        coll = self.db.get_collection(name, codec_options=RAW_CODEC)
        values = list(ids.values())
        for start in range(0, len(values), REREAD_CHUNK):
            chunk = values[start : start + REREAD_CHUNK]
            found: dict[bytes, RawBSONDocument] = {}
            async for doc in coll.find({"_id": {"$in": chunk}}):
                found[id_bytes(leading_id(doc))] = doc
            for value in chunk:
                key = id_bytes(value)
                final[key] = _Final(value, found.get(key), self.last_ts[name].get(key))

    async def finish(
        self, between_rounds: Callable[[int], Awaitable[None]] | None = None
    ) -> ChangeCapture:
        """Converge to the end instant and give the entries to store; closes the streams."""
        if self._poller is not None:
            self._stop_polling.set()
            await self._poller  # ends after the drain it may be in (its errors are ours)
            self._poller = None
        finals: dict[str, dict[bytes, _Final]] = {name: {} for name in self.names}
        rounds = 0
        await self.drain()
        while any(self.pending.values()):
            rounds += 1
            if rounds > MAX_ROUNDS:
                raise OpsError(
                    f"the source never stopped changing for a moment in {MAX_ROUNDS} passes "
                    f"({self.events} changes during the backup); run --consistent at a quieter "
                    "time, or without --consistent"
                )
            pending, self.pending = self.pending, {name: {} for name in self.names}
            for name, ids in pending.items():
                if ids:
                    await self._reread(name, ids, finals[name])
            if between_rounds is not None:
                await between_rounds(rounds)
            await self.drain()
        ended_at = dt.datetime.now(dt.UTC)
        await self.close()
        capture = ChangeCapture(
            file=OPLOG_FILE if self.timestamps else CHANGES_FILE,
            events=self.events,
            rounds=rounds,
            started_at=self.started_at,
            ended_at=ended_at,
            end_cluster_time=self.max_ts,
        )
        capture.entries = self._entries(finals, ended_at)
        return capture

    def _entries(self, finals: dict[str, dict[bytes, _Final]], wall: dt.datetime) -> list[bytes]:
        ordered: list[tuple[Timestamp, int, bytes]] = []
        zero = Timestamp(0, 0)
        for name, items in finals.items():
            ns = f"{self.db.name}.{name}"
            for item in items.values():
                entry: dict[str, Any] = {}
                if self.timestamps and item.ts is not None:
                    entry["ts"] = item.ts
                entry["v"] = 2
                if item.doc is None:
                    entry.update(op="d", ns=ns, o={"_id": item.id})
                else:
                    doc_id = leading_id(item.doc)
                    entry.update(op="u", ns=ns, o2={"_id": doc_id}, o=item.doc)
                entry["wall"] = wall
                ordered.append((item.ts or zero, len(ordered), bson.encode(entry)))
        ordered.sort(key=lambda t: (t[0], t[1]))
        return [raw for _, _, raw in ordered]
